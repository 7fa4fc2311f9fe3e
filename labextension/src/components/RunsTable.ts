/**
 * The runs table in the main area: a Lumino DataGrid over GET /nbexp/api/table, so a sprint of
 * 100,000 runs scrolls as one table while the server reads only the rows on screen. Sorting (click a
 * column header, again to reverse), a column chooser (params, metrics last/min/max, system, data;
 * remembered per sprint), group by a param or tag, and a query box evaluated on the server whose
 * errors show inline at their position. Clicking a row opens the run; ctrl- (or cmd-) clicking selects it, shift-clicking
 * selects the rows from the last one selected, and "Compare selected" compares them as the sidebar's Compare does.
 *
 * The table is a view of the sidebar's model (model.ts): the sprint, the query and the sort are the
 * model's, so a query typed here filters the sidebar and a sort orders it. It stays live: when the model's
 * poll sees runs start, change or end, the rows on screen are asked again, keeping the scroll position,
 * column widths, sort, columns and grouping.
 *
 * The grid draws on a canvas, so every control around it is a labelled HTML element, and the grid's
 * host says what it shows (role "grid", aria-rowcount, a status line with the sort and totals, and a
 * table of the rows on screen for screen readers).
 */
import {
  BasicKeyHandler,
  BasicMouseHandler,
  DataGrid,
  DataModel,
  RendererMap,
  ResizeHandle,
  TextRenderer
} from '@lumino/datagrid';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { requestAPI } from '../api';
import { RunsModel, runCount } from '../model';
import { el, fieldText, fmt } from './format';

const PAGE = 200;
const ROW_HEIGHT = 22;
const COLUMN_WIDTH = 140;
const HEADER_HEIGHT = 24;
const QUERY_DELAY_MS = 300;
const COLUMNS_KEY = 'nbexp:table-columns:';
const WIDTHS_KEY = 'nbexp:table-widths:';

export interface ITableRow {
  id: string;
  name: string | null;
  status: string;
  start_time: number;
  end_time: number | null;
  duration: number | null;
  tags: string[];
  cells: Record<string, unknown>;
  group?: unknown;
}

export interface ITablePage {
  total: number;
  offset: number;
  limit: number;
  columns: string[];
  groups: { value: unknown; count: number }[] | null;
  rows: ITableRow[];
  available?: { params: string[]; metrics: string[]; system: string[]; data: string[]; tags: string[]; run: string[] };
}

interface ITableError {
  message: string;
  position?: number;
  argument?: string;
}

/** The column ids a sprint shows, as the user chose them last in this browser; null until they choose: the
 * server's key columns (name, status, the main metric, the params that vary), as `nbexp ls` shows. */
function savedColumns(sprint: string): string[] | null {
  try {
    const raw = window.localStorage.getItem(COLUMNS_KEY + sprint);
    const cols = raw ? JSON.parse(raw) : null;
    return Array.isArray(cols) && cols.length ? cols.map(String) : null;
  } catch {
    return null;
  }
}

/** The widths (px) the user dragged a sprint's columns to, by column id, in this browser. */
function savedWidths(sprint: string): Record<string, number> {
  try {
    const raw = JSON.parse(window.localStorage.getItem(WIDTHS_KEY + sprint) ?? '{}');
    const out: Record<string, number> = {};
    for (const [id, w] of Object.entries(raw ?? {})) {
      if (typeof w === 'number' && w > 0) {
        out[id] = w;
      }
    }
    return out;
  } catch {
    return {};
  }
}

/** Whether a header hit is on a column's border: datagrid's own rule (BasicMouseHandler's resize handles), whose
 * drag resizes the column rather than sorting by it. */
function onColumnBorder(hit: DataGrid.HitTestResult): boolean {
  return (hit.column > 0 && hit.x <= 5) || hit.width - hit.x <= 6;
}

/** A column id in the query language's own spelling: a key with odd characters in backticks. */
export function fieldId(prefix: string, key: string, agg = 'last'): string {
  const name = /^[\w.\-:/+]+$/.test(key) ? key : '`' + key.replace(/`/g, '``') + '`';
  const id = `${prefix}.${name}`;
  return prefix === 'metrics' && agg !== 'last' ? `${agg}(${id})` : id;
}

/** Rows fetched a page at a time as the grid asks for them. */
class RunsDataModel extends DataModel {
  columns: string[] = [];
  grouped = false;
  total = 0;
  private _rows = new Map<number, ITableRow>();
  private _pending = new Set<number>();
  private _generation = 0;

  constructor(
    private _fetch: (offset: number) => Promise<ITablePage | null>,
    private _view: RunsModel
  ) {
    super();
  }

  get sort(): string | null {
    return this._view.sort;
  }

  get descending(): boolean {
    return this._view.descending;
  }

  get headers(): string[] {
    return this.grouped ? ['group', ...this.columns] : this.columns;
  }

  reset(page: ITablePage): void {
    this._generation++;
    this._rows.clear();
    this._pending.clear();
    this.total = page.total;
    this.grouped = page.groups !== null;
    this.columns = page.columns;
    this._store(page);
    this.emitChanged({ type: 'model-reset' });
  }

  /** Fresh pages of the same view (a live refresh): they replace the rows held, the rest are asked again when
   * scrolled to; the grid keeps its scroll position and column widths. */
  update(pages: ITablePage[]): void {
    this._generation++;
    this._rows.clear();
    this._pending.clear();
    this.total = pages[0].total;
    pages.forEach(p => this._store(p));
    this.emitChanged({ type: 'model-reset' });
  }

  row(index: number): ITableRow | undefined {
    return this._rows.get(index);
  }

  /** Draw the rows again (a selection changed: their background shows it). */
  repaint(): void {
    this.emitChanged({
      type: 'cells-changed',
      region: 'body',
      row: 0,
      column: 0,
      rowSpan: this.total,
      columnSpan: this.headers.length
    });
  }

  rowCount(region: DataModel.RowRegion): number {
    return region === 'body' ? this.total : 1;
  }

  columnCount(region: DataModel.ColumnRegion): number {
    return region === 'body' ? this.headers.length : 0;
  }

  data(region: DataModel.CellRegion, row: number, column: number): unknown {
    const id = this.headers[column];
    if (region === 'column-header') {
      return id === this.sort ? `${id} ${this.descending ? '▼' : '▲'}` : id;
    }
    if (region !== 'body') {
      return '';
    }
    const r = this._rows.get(row);
    if (!r) {
      this._load(Math.floor(row / PAGE) * PAGE);
      return '…';
    }
    return id === 'group' ? fmt(r.group ?? 'none') : fieldText(id, r.cells[id]);
  }

  private _store(page: ITablePage): void {
    page.rows.forEach((r, i) => this._rows.set(page.offset + i, r));
  }

  private _load(offset: number): void {
    if (this._pending.has(offset)) {
      return;
    }
    this._pending.add(offset);
    const generation = this._generation;
    void this._fetch(offset).then(page => {
      if (page && generation === this._generation) {
        this._store(page);
        this.emitChanged({
          type: 'cells-changed',
          region: 'body',
          row: offset,
          column: 0,
          rowSpan: page.rows.length,
          columnSpan: this.headers.length
        });
      }
    });
  }
}

/** Header click: sort by that column (again: the other way); a drag on a header's border resizes its column (a
 * double click: fits it to its text), remembered; body click: open the run, with ctrl or cmd: select it (again:
 * unselect), with shift: select the rows from the last one selected. */
class TableMouseHandler extends BasicMouseHandler {
  constructor(private _table: RunsTable) {
    super();
  }

  /** The column whose border the user is dragging now (its width under the mouse is theirs until they let go), or
   * -1. */
  get resizing(): number {
    const press = this.pressData;
    return press?.type === 'column-resize' && press.region === 'body' ? press.index : -1;
  }

  onMouseDown(grid: DataGrid, event: MouseEvent): void {
    const hit = grid.hitTest(event.clientX, event.clientY);
    if (hit.region === 'column-header' && hit.column >= 0) {
      if (onColumnBorder(hit)) {
        super.onMouseDown(grid, event); // datagrid's column resize
      } else {
        this._table.sortBy(hit.column);
      }
      return;
    }
    if (hit.region === 'body' && hit.row >= 0) {
      if (event.shiftKey) {
        this._table.selectTo(hit.row);
      } else if (event.ctrlKey || event.metaKey) {
        this._table.toggleRow(hit.row);
      } else {
        this._table.openRow(hit.row);
      }
      return;
    }
    super.onMouseDown(grid, event);
  }

  onMouseUp(grid: DataGrid, event: MouseEvent): void {
    const resized = this.pressData?.type === 'column-resize';
    super.onMouseUp(grid, event);
    if (resized) {
      this._table.columnsResized();
    }
  }

  /** A double click on a header's border fits the column to its text (datagrid's); nothing else. */
  onMouseDoubleClick(grid: DataGrid, event: MouseEvent): void {
    const hit = grid.hitTest(event.clientX, event.clientY);
    if (hit.region === 'column-header' && onColumnBorder(hit)) {
      super.onMouseDoubleClick(grid, event);
      this._table.columnsResized();
    }
  }

  /** No row-resize cursor at a header's top or bottom edge: only columns resize. */
  cursorForHandle(handle: ResizeHandle): string {
    return handle === 'top' || handle === 'bottom' ? 'default' : super.cursorForHandle(handle);
  }
}

export interface IRunsTableOptions {
  /** The sidebar's model: its sprint, query and sort are the table's. */
  model: RunsModel;
  onOpen: (id: string) => void;
  /** Compare these runs (oldest first: the baseline), as the sidebar's Compare does; none: no selection. */
  onCompare?: (ids: string[]) => void;
}

export class RunsTable extends Panel {
  readonly grid: DataGrid;
  private _model: RunsDataModel;
  private _view: RunsModel;
  private _sprint: string;
  /** The columns the user chose for this sprint; null: the sprint's key columns for the main metric. */
  private _columns: string[] | null;
  /** The widths the user gave this sprint's columns, by column id (the others: the default width). */
  private _widths: Record<string, number>;
  private _mouse: TableMouseHandler;
  private _group = '';
  /** The query as typed, before the server accepts it into the model (null: the model's). */
  private _typed: string | null = null;
  /** The view the grid shows (sprint, query, sort, columns, group): a model change to it asks nothing. */
  private _shown = '';
  /** The view last asked for (a refresh on its way): a model change to it asks nothing more. */
  private _asked = '';
  private _stale = false;
  private _live: Promise<void> | null = null;
  private _available: ITablePage['available'] | null = null;
  private _queryInput: HTMLInputElement;
  private _error: HTMLElement;
  private _status: HTMLElement;
  private _matters: HTMLElement;
  private _mattersFor: string | null = null;
  private _groupSelect: HTMLSelectElement;
  private _chooser: HTMLFieldSetElement;
  private _groups: HTMLElement;
  private _onScreen: HTMLTableElement;
  private _screenFrame = 0;
  private _timer = 0;
  private _request = 0;
  private _options: IRunsTableOptions;
  /** The selected runs (by id, so a sort or refresh keeps them) and their start times (the oldest is the baseline). */
  private _selected = new Map<string, number>();
  private _anchor: number | null = null;
  private _compare: HTMLButtonElement | null = null;

  constructor(options: IRunsTableOptions) {
    super();
    this._options = options;
    this._view = options.model;
    this._sprint = this._view.sprint;
    this._columns = savedColumns(this._sprint);
    this._widths = savedWidths(this._sprint);
    this.id = 'nbexp-runs-table';
    this.title.label = `Runs (${this._sprint})`;
    this.title.closable = true;
    this.addClass('nbexp-panel');

    const bar = el('div', { class: 'nbexp-controls', style: 'padding: 6px 8px; align-items: center' });
    this._queryInput = el('input', {
      type: 'search',
      'aria-label': 'Query runs',
      placeholder: 'metrics.test_auc > 0.9 and params.C < 1 and status = finished and tag = baseline',
      style: 'flex: 4 1 300px; font-family: var(--jp-code-font-family)'
    });
    this._queryInput.value = this._view.query;
    this._queryInput.addEventListener('input', () => {
      window.clearTimeout(this._timer);
      this._timer = window.setTimeout(() => {
        this._typed = this._queryInput.value;
        void this.refresh();
      }, QUERY_DELAY_MS);
    });
    this._queryInput.addEventListener('keydown', e => {
      if (e.key === 'Enter') {
        window.clearTimeout(this._timer);
        this._typed = this._queryInput.value;
        void this.refresh();
      }
    });
    this._groupSelect = el('select', { 'aria-label': 'Group by', style: 'flex: 1 1 120px' });
    this._groupSelect.addEventListener('change', () => {
      this._group = this._groupSelect.value;
      void this.refresh();
    });
    const columnsButton = el(
      'button',
      { class: 'jp-mod-styled', 'aria-label': 'Choose columns', 'aria-expanded': 'false' },
      'Columns'
    );
    columnsButton.addEventListener('click', () => {
      const open = this._chooser.hidden;
      this._chooser.hidden = !open;
      columnsButton.setAttribute('aria-expanded', String(open));
      this._renderChooser();
    });
    bar.append(this._queryInput, this._groupSelect, columnsButton);
    if (options.onCompare) {
      const onCompare = options.onCompare;
      this._compare = el(
        'button',
        {
          class: 'jp-mod-styled',
          'aria-label': 'Compare selected rows',
          title: 'Compare the rows selected with ctrl-click (shift-click: a range); the oldest run is the baseline'
        },
        'Compare selected'
      );
      this._compare.disabled = true;
      this._compare.addEventListener('click', () => onCompare(this.selected));
      bar.appendChild(this._compare);
    }
    this._error = el('div', {
      role: 'alert',
      'aria-label': 'Query error',
      style: 'color: var(--jp-error-color1); padding: 0 8px; font-family: var(--jp-code-font-family); white-space: pre'
    });
    this._chooser = el('fieldset', {
      'aria-label': 'Columns',
      style: 'max-height: 200px; overflow: auto; margin: 0 8px; border: 1px solid var(--jp-border-color2)'
    });
    this._chooser.hidden = true;
    this._status = el('div', { class: 'nbexp-status', role: 'status', 'aria-label': 'Table status' });
    this._matters = el('div', { class: 'nbexp-status', 'aria-label': 'What matters', style: 'padding: 0 8px' });
    this._groups = el('ul', {
      'aria-label': 'Groups',
      style: 'display: flex; flex-wrap: wrap; gap: 8px; list-style: none; margin: 0; padding: 0 8px'
    });
    this._onScreen = el('table', { class: 'nbexp-sr-only', 'aria-label': 'Runs on screen' });
    const top = new Widget();
    top.node.append(bar, this._error, this._chooser, this._status, this._matters, this._groups, this._onScreen);
    this.addWidget(top);

    this._model = new RunsDataModel(offset => this._page(offset), this._view);
    this.grid = new DataGrid({
      defaultSizes: { rowHeight: 22, columnWidth: COLUMN_WIDTH, rowHeaderWidth: 0, columnHeaderHeight: HEADER_HEIGHT },
      headerVisibility: 'column',
      style: gridStyle(i => {
        const row = this._model?.row(i);
        return row !== undefined && this._selected.has(row.id);
      })
    });
    this.grid.dataModel = this._model;
    this.grid.keyHandler = new BasicKeyHandler();
    this._mouse = new TableMouseHandler(this);
    this.grid.mouseHandler = this._mouse;
    const text = new TextRenderer({
      textColor: cssVar('--jp-ui-font-color1', '#000'),
      font: `12px ${cssVar('--jp-ui-font-family', 'sans-serif')}`
    });
    this.grid.cellRenderers = new RendererMap({}, text);
    this.grid.node.setAttribute('role', 'grid');
    this.grid.node.setAttribute('aria-label', 'Runs table');
    this.grid.node.style.minHeight = '200px';
    this.addWidget(this.grid);
    this.node.style.display = 'flex';
    this.node.style.flexDirection = 'column';
    this.grid.node.style.flex = '1 1 auto';
    this._model.changed.connect(() => this._screen());
    for (const event of ['wheel', 'keyup', 'pointerup']) {
      this.grid.node.addEventListener(event, () => this._screen(), { passive: true });
    }
    this._view.viewChanged.connect(this._onView, this);
    this._view.runsChanged.connect(this._onRuns, this);
    this._view.changed.connect(this._onChanged, this);
    void this.refresh();
  }

  dispose(): void {
    this._view.viewChanged.disconnect(this._onView, this);
    this._view.runsChanged.disconnect(this._onRuns, this);
    this._view.changed.disconnect(this._onChanged, this);
    window.clearTimeout(this._timer);
    window.cancelAnimationFrame(this._screenFrame);
    super.dispose();
  }

  /** The sidebar changed the sprint, or cleared the query or sort: show the model's view. */
  private _onView(): void {
    if (this._view.sprint !== this._sprint) {
      this._sprint = this._view.sprint;
      this._columns = savedColumns(this._sprint);
      this._widths = savedWidths(this._sprint);
      this.title.label = `Runs (${this._sprint})`;
      this._selected.clear();
      this._anchor = null;
      this._selectionChanged();
    }
    if (document.activeElement !== this._queryInput) {
      this._typed = null; // a query cleared or set elsewhere wins over one that did not parse
      this._queryInput.value = this._view.query;
    }
    if (this._viewKey() !== this._shown) {
      void this.refresh();
    }
  }

  /** The sidebar picked another main metric (or the sprint got its first): the key columns show it, unless the
   * user chose the columns. */
  private _onChanged(): void {
    if (this._columns === null && this._viewKey() !== this._asked) {
      void this.refresh();
    }
  }

  /** Runs started, changed or ended: the rows on screen again (later, when the table is hidden). */
  private _onRuns(): void {
    if (!this.isVisible) {
      this._stale = true;
      return;
    }
    void this.live();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this._stale) {
      this._stale = false;
      void this.live();
    }
  }

  /**
   * Ask the pages on screen again and show them in place: new runs, statuses and metrics of running runs
   * appear; the scroll position, column widths, sort, columns and grouping stay. One at a time: a change
   * arriving meanwhile asks once more after it.
   */
  async live(): Promise<void> {
    if (this._live) {
      this._stale = true;
      return this._live;
    }
    this._live = (async () => {
      const first = Math.floor(this.grid.scrollY / ROW_HEIGHT);
      const last = first + Math.ceil(this.grid.pageHeight / ROW_HEIGHT);
      const offsets: number[] = [];
      for (let o = Math.floor(first / PAGE) * PAGE; o <= last; o += PAGE) {
        offsets.push(o);
      }
      const pages = await Promise.all(offsets.map(o => this._page(o)));
      if (pages.every((p): p is ITablePage => p !== null)) {
        this._model.update(pages);
        this._sizeColumns();
        this._describe(pages[0]);
      }
    })();
    try {
      await this._live;
    } finally {
      this._live = null;
    }
    if (this._stale && this.isVisible) {
      this._stale = false;
      await this.live();
    }
  }

  /** The query as the grid asks it: the one being typed, else the model's. */
  private get _query(): string {
    return this._typed ?? this._view.query;
  }

  private _viewKey(): string {
    return JSON.stringify([
      this._sprint,
      this._query,
      this._view.sort,
      this._view.descending,
      this._columns ?? ['key columns', this._view.mainMetric],
      this._group
    ]);
  }

  /** A screen reader's view of the canvas: the rows on screen as a table (also what tests read). */
  private _screen(): void {
    window.cancelAnimationFrame(this._screenFrame);
    this._screenFrame = window.requestAnimationFrame(() => {
      const headers = this._model.headers;
      const first = Math.floor(this.grid.scrollY / ROW_HEIGHT);
      const last = Math.min(this._model.total, first + Math.ceil(this.grid.pageHeight / ROW_HEIGHT) + 1);
      const head = el('tr', {});
      head.append(...headers.map(h => el('th', { scope: 'col' }, h)));
      const rows: HTMLElement[] = [head];
      for (let i = first; i < last; i++) {
        const row = this._model.row(i);
        const tr = el('tr', {
          'aria-rowindex': String(i + 2),
          'aria-selected': String(row !== undefined && this._selected.has(row.id))
        });
        tr.append(...headers.map((_, c) => el('td', {}, String(this._model.data('body', i, c)))));
        rows.push(tr);
      }
      this._onScreen.replaceChildren(...rows);
    });
  }

  /** Load the first page again (after a query, sort, column or group change). A query the server accepts
   * becomes the model's: the sidebar lists the runs it keeps. */
  async refresh(): Promise<void> {
    const key = this._viewKey();
    this._asked = key;
    const page = await this._page(0, true);
    if (!page) {
      return;
    }
    this._shown = key;
    this._available = page.available ?? this._available;
    this._model.reset(page);
    this._sizeColumns();
    if (this._typed !== null) {
      const typed = this._typed;
      this._typed = null;
      void this._view.setView({ query: typed });
    }
    this._describe(page);
    if (this._mattersFor !== this._query) {
      this._mattersFor = this._query; // sprint-wide, so asked again only when the user asks anew (a query)
      void this._whatMatters();
    }
    this._renderGroupSelect();
    if (!this._chooser.hidden) {
      this._renderChooser();
    }
  }

  /** What the grid holds, said around it: row count, sort, grouping, groups. */
  private _describe(page: ITablePage): void {
    this.grid.node.setAttribute('aria-rowcount', String(page.total));
    this.grid.node.setAttribute('aria-colcount', String(this._model.headers.length));
    this.grid.node.dataset.columns = JSON.stringify(this._model.headers);
    const sort = this._model.sort
      ? `, sorted by ${this._model.sort} ${this._model.descending ? 'descending' : 'ascending'}`
      : '';
    const group = this._group ? `, grouped by ${this._group}` : '';
    this._status.textContent = `${runCount(page.total)}${sort}${group}`;
    this._groups.replaceChildren(
      ...(page.groups ?? []).map(g => el('li', {}, `${this._group} = ${fmt(g.value ?? 'none')}: ${g.count}`))
    );
  }

  /** Each column at the width the user gave it in this sprint (by id: a column added or removed moves the others,
   * their widths with them), else the default. A column being dragged keeps the width under the mouse (a live
   * refresh that landed mid-drag put it back, and the drag was lost); letting go remembers it. */
  private _sizeColumns(): void {
    const dragged = this._mouse.resizing;
    this._model.headers.forEach((id, i) => {
      const width = this._widths[id] ?? COLUMN_WIDTH;
      if (i !== dragged && this.grid.columnSize('body', i) !== width) {
        this.grid.resizeColumn('body', i, width);
      }
    });
    this._sayWidths();
  }

  /** The user dragged a column's border: its width, remembered for this sprint. */
  columnsResized(): void {
    this._model.headers.forEach((id, i) => {
      const width = this.grid.columnSize('body', i);
      if (width === COLUMN_WIDTH) {
        delete this._widths[id];
      } else {
        this._widths[id] = width;
      }
    });
    try {
      window.localStorage.setItem(WIDTHS_KEY + this._sprint, JSON.stringify(this._widths));
    } catch {
      // storage full or off: the widths last this session
    }
    this._sayWidths();
    this._screen();
  }

  /** The columns' widths on the grid's host (what tests read: the canvas shows them only as pixels). */
  private _sayWidths(): void {
    const widths = this._model.headers.map((id, i) => [id, this.grid.columnSize('body', i)]);
    this.grid.node.dataset.widths = JSON.stringify(Object.fromEntries(widths));
  }

  /** Sort by the grid's column ``index``; a second click on it reverses the order. */
  sortBy(index: number): void {
    const id = this._model.headers[index];
    if (!id || id === 'group') {
      return;
    }
    // the model's sort: the sidebar follows it, and its change asks the grid again (_onView)
    void this._view.setView(
      this._model.sort === id ? { descending: !this._model.descending } : { sort: id, descending: true }
    );
  }

  /** The selected runs, oldest first: the first is the comparison's baseline, whatever the table's sort. */
  get selected(): string[] {
    return [...this._selected].sort((a, b) => a[1] - b[1]).map(([id]) => id);
  }

  /** Select the row at ``index`` (or unselect it if it is selected). */
  toggleRow(index: number): void {
    const row = this._model.row(index);
    if (!row) {
      return;
    }
    if (this._selected.has(row.id)) {
      this._selected.delete(row.id);
    } else {
      this._selected.set(row.id, row.start_time);
    }
    this._anchor = index;
    this._selectionChanged();
  }

  /** Select the rows from the last one selected (or clicked) to ``index``. */
  selectTo(index: number): void {
    const from = this._anchor ?? index;
    for (let i = Math.min(from, index); i <= Math.max(from, index); i++) {
      const row = this._model.row(i);
      if (row) {
        this._selected.set(row.id, row.start_time);
      }
    }
    this._anchor = index;
    this._selectionChanged();
  }

  private _selectionChanged(): void {
    const n = this._selected.size;
    if (this._compare) {
      this._compare.disabled = n < 2;
      this._compare.textContent = n ? `Compare selected (${n})` : 'Compare selected';
    }
    this._model.repaint();
  }

  openRow(index: number): void {
    const row = this._model.row(index);
    if (row) {
      this._options.onOpen(row.id);
    }
  }

  /** Show or hide a column (remembered for this sprint). */
  toggleColumn(id: string, on: boolean): void {
    const shown = this._columns ?? this._model.columns.slice();
    this._columns = on ? [...shown.filter(c => c !== id), id] : shown.filter(c => c !== id);
    if (!this._columns.length) {
      this._columns = ['name'];
    }
    try {
      window.localStorage.setItem(COLUMNS_KEY + this._sprint, JSON.stringify(this._columns));
    } catch {
      // storage full or off: the choice lasts this session
    }
    if (!on && this._model.sort === id) {
      void this._view.setView({ sort: null, descending: true }); // asks the grid again (_onView)
      return;
    }
    void this.refresh();
  }

  /** What matters across the sprint for its main metric: the params by random-forest importance (nbexp explain). */
  private async _whatMatters(): Promise<void> {
    try {
      const imp = await requestAPI<{
        metric: string;
        runs: number;
        params: { param: string; importance: number; spearman: number | null }[];
        note: string | null;
      }>('importance', { sprint: this._sprint, metric: this._view.mainMetric ?? undefined });
      const ranked = imp.params
        .slice(0, 5)
        .map(
          p =>
            `${p.param} ${p.importance.toFixed(2)}` +
            (p.spearman === null ? '' : ` (Spearman ${p.spearman >= 0 ? '+' : ''}${p.spearman.toFixed(2)})`)
        );
      this._matters.textContent = ranked.length
        ? `What matters for ${imp.metric} over ${runCount(imp.runs)}: ${ranked.join(', ')}`
        : `What matters for ${imp.metric}: ${imp.note ?? 'no param varies'}`;
    } catch {
      this._matters.textContent = ''; // no metric in this sprint (or no scikit-learn): nothing to rank
    }
  }

  private async _page(offset: number, first = false): Promise<ITablePage | null> {
    const request = first ? ++this._request : this._request;
    try {
      const page = await requestAPI<ITablePage>('table', {
        sprint: this._sprint,
        q: this._query.trim() ? this._query : undefined,
        sort: this._model.sort ?? undefined,
        order: this._model.descending ? 'desc' : 'asc',
        // the key columns are the server's pick for the first page; the rest of the view's pages show the same
        columns: (this._columns ?? (first ? null : this._model.columns))?.join(','),
        metric: this._columns ? undefined : (this._view.mainMetric ?? undefined),
        group: this._group || undefined,
        offset,
        limit: PAGE,
        available: first ? 1 : 0
      });
      if (first && request === this._request) {
        this._showError(null);
      }
      return request === this._request ? page : null;
    } catch (e) {
      if (request === this._request) {
        this._showError(e as Error & ITableError);
      }
      return null;
    }
  }

  private _showError(error: (Error & ITableError) | null): void {
    this._queryInput.removeAttribute('aria-invalid');
    this._error.textContent = '';
    if (!error) {
      return;
    }
    this._queryInput.setAttribute('aria-invalid', 'true');
    const detail = (error as { detail?: ITableError }).detail;
    const position = detail?.position;
    let text = detail?.message ?? error.message;
    if (position !== undefined && (detail?.argument ?? 'query') === 'query') {
      text = `${this._query}\n${' '.repeat(position)}^ ${text}`;
    }
    this._error.textContent = text;
  }

  private _renderGroupSelect(): void {
    const a = this._available;
    const options: [string, string][] = [['', 'no grouping']];
    options.push(['tag', 'tags']);
    options.push(['status', 'status']);
    for (const k of a?.params ?? []) {
      options.push([fieldId('params', k), `param ${k}`]);
    }
    this._groupSelect.replaceChildren(
      ...options.map(([value, label]) => {
        const o = el('option', { value }, label);
        o.selected = value === this._group;
        return o;
      })
    );
  }

  private _renderChooser(): void {
    const a = this._available;
    if (!a) {
      return;
    }
    const sections: [string, string[]][] = [
      ['run', ['name', 'status', 'start_time', 'end_time', 'duration', 'tag', 'note', 'id']],
      ['params', a.params.map(k => fieldId('params', k))],
      [
        'metrics',
        a.metrics.flatMap(k => [fieldId('metrics', k), fieldId('metrics', k, 'min'), fieldId('metrics', k, 'max')])
      ],
      ['system', a.system.map(k => fieldId('system', k))],
      ['data', a.data.map(k => fieldId('data', k))]
    ];
    this._chooser.replaceChildren(el('legend', {}, 'Columns'));
    for (const [title, ids] of sections) {
      if (!ids.length) {
        continue;
      }
      const group = el('div', { role: 'group', 'aria-label': `${title} columns`, style: 'padding: 2px 0' });
      group.appendChild(el('strong', { style: 'margin-right: 6px' }, title));
      for (const id of ids) {
        const label = el('label', { style: 'margin-right: 10px; white-space: nowrap' });
        const box = el('input', { type: 'checkbox' });
        box.checked = (this._columns ?? this._model.columns).includes(id);
        box.addEventListener('change', () => this.toggleColumn(id, box.checked));
        label.append(box, document.createTextNode(` ${id}`));
        group.appendChild(label);
      }
      this._chooser.appendChild(group);
    }
  }
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/** The grid's colours, the lab theme's; a selected row (``selected``) in the theme's brand colour. */
function gridStyle(selected: (row: number) => boolean): DataGrid.Style {
  return {
    ...DataGrid.defaultStyle,
    voidColor: cssVar('--jp-layout-color1', '#fff'),
    backgroundColor: cssVar('--jp-layout-color1', '#fff'),
    rowBackgroundColor: i =>
      selected(i)
        ? cssVar('--jp-brand-color3', '#c3e2fa')
        : i % 2 === 0
          ? cssVar('--jp-layout-color1', '#fff')
          : cssVar('--jp-layout-color2', '#f3f3f3'),
    headerBackgroundColor: cssVar('--jp-layout-color2', '#eee'),
    gridLineColor: cssVar('--jp-border-color3', 'rgba(20, 20, 20, 0.15)'),
    headerGridLineColor: cssVar('--jp-border-color2', 'rgba(20, 20, 20, 0.25)')
  };
}
