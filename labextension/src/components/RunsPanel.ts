/**
 * The left sidebar: a compact view of the runs model the runs table shows (components/RunsTable.ts): the
 * sprint's runs, live, in the table's order and filtered by its query (said above the list, with a button to
 * clear it), each with its name, status, main metric and the params that vary; select / star / filter and
 * Compare.
 */
import { Widget } from '@lumino/widgets';

import { downloadBundle } from '../api';
import { RunsModel, PAGE, runCount } from '../model';
import { IRunRow } from '../tokens';
import { el, fieldText, fmt, when } from './format';

const KEY_PARAMS = 3;
const SEARCH_DELAY_MS = 250;

/** The text a filter matches, as the server's `q=` does: id, name, status, note, tags, key=value. */
function searchText(r: IRunRow): string {
  const params = Object.entries(r.params).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [r.id, r.name ?? '', r.status, r.note ?? '', ...r.tags, ...params].join('\n').toLowerCase();
}

export interface IRunsPanelOptions {
  model: RunsModel;
  onCompare: (ids: string[]) => void;
  onOpen: (id: string) => void;
  /** Open the runs table of a sprint in the main area. */
  onTable?: (sprint: string) => void;
}

export class RunsPanel extends Widget {
  private _model: RunsModel;
  private _selected = new Set<string>();
  private _shown = PAGE;
  private _filter = '';
  private _matches: number | null = null;
  private _hits = new Set<string>(); // runs the server found for the filter (it also searches code)
  private _searchTimer = 0;
  private _sprintSelect: HTMLSelectElement;
  private _metricSelect: HTMLSelectElement;
  private _filterInput: HTMLInputElement;
  private _compare: HTMLButtonElement;
  private _export: HTMLButtonElement;
  private _note = '';
  private _status: HTMLElement;
  private _sync: HTMLElement;
  private _view: HTMLElement;
  private _list: HTMLElement;
  private _more: HTMLButtonElement;
  private _options: IRunsPanelOptions;

  constructor(options: IRunsPanelOptions) {
    super();
    this._options = options;
    this._model = options.model;
    this.id = 'nbexp-sidebar';
    this.addClass('nbexp-panel');
    this.title.caption = 'nbexp: experiment runs';

    const header = el('div', { class: 'nbexp-header' });
    header.appendChild(el('h2', {}, 'Runs'));
    this._sprintSelect = el('select', { 'aria-label': 'Sprint' });
    this._sprintSelect.addEventListener('change', () => {
      this._selected.clear();
      this._shown = PAGE;
      this._note = '';
      void this._model.setSprint(this._sprintSelect.value);
    });
    this._metricSelect = el('select', {
      'aria-label': 'Main metric',
      title:
        "The metric shown for every run of this sprint (remembered per sprint); by default the one most of the sprint's runs hold, evaluation metrics first"
    });
    this._metricSelect.addEventListener('change', () => this._model.setMetric(this._metricSelect.value));
    this._filterInput = el('input', { type: 'search', placeholder: 'filter runs', 'aria-label': 'Filter runs' });
    this._filterInput.addEventListener('input', () => {
      this._filter = this._filterInput.value.toLowerCase();
      this._matches = null;
      this._hits = new Set();
      this.render();
      this._searchServer();
    });
    this._compare = el(
      'button',
      { class: 'jp-mod-styled jp-mod-accept', 'aria-label': 'Compare selected runs' },
      'Compare'
    );
    this._compare.addEventListener('click', () => this._options.onCompare(this._selectedOrdered()));
    this._export = el(
      'button',
      {
        class: 'jp-mod-styled',
        'aria-label': 'Export selected runs as a bundle',
        title: 'Download the selected runs as a bundle file; nbexp import FILE merges it into another ledger'
      },
      'Export'
    );
    this._export.addEventListener('click', () => {
      const ids = this._selectedOrdered();
      downloadBundle(ids).then(
        name => this._say(`downloaded ${name}: nbexp import ${name}`),
        e => this._say(`export failed: ${(e as Error).message}`)
      );
    });
    const table = el(
      'button',
      {
        class: 'jp-mod-styled',
        'aria-label': 'Open the runs table',
        title: 'Every run of the sprint in a table: sort, columns, group, query'
      },
      'Runs'
    );
    table.addEventListener('click', () => this._options.onTable?.(this._model.sprint));
    const controls = el('div', { class: 'nbexp-controls' });
    controls.append(this._sprintSelect, this._metricSelect, this._filterInput, this._compare, this._export, table);
    header.appendChild(controls);
    this._status = el('div', { class: 'nbexp-status', role: 'status' });
    this._sync = el('div', { class: 'nbexp-status', 'aria-label': 'Sync to MLflow' });
    this._view = el('div', { class: 'nbexp-status nbexp-view', 'aria-label': 'Runs table view' });
    this._list = el('ul', { class: 'nbexp-list', 'aria-label': 'Runs' });
    this._more = el('button', { class: 'jp-mod-styled', 'aria-label': 'Show more runs' }, 'Show more');
    this._more.addEventListener('click', async () => {
      this._shown += PAGE;
      if (this._model.loaded < this._shown && this._model.loaded < this._model.total) {
        await this._model.more();
      }
      this.render();
    });
    this.node.append(header, this._status, this._view, this._sync, this._list, this._more);
    this._model.changed.connect(() => this.render());
    this.render();
  }

  /** A one-off line under the status (export results), until the next selection change. */
  private _say(text: string): void {
    this._note = text;
    this.render();
  }

  /** Runs not loaded yet may match too, and loaded ones by the code of their cells, which rows do not
   * hold: ask the server once typing pauses. */
  private _searchServer(): void {
    window.clearTimeout(this._searchTimer);
    const text = this._filter.trim();
    if (!text) {
      return;
    }
    this._searchTimer = window.setTimeout(() => {
      this._model.search(text).then(
        found => {
          if (found !== null && this._filter.trim() === text) {
            this._matches = found.total;
            this._hits = new Set(found.ids);
            this.render();
          }
        },
        () => undefined // the model shows its error in the status line
      );
    }, SEARCH_DELAY_MS);
  }

  private _selectedOrdered(): string[] {
    // oldest first, whatever the table's sort: the first run is the baseline of the comparison
    return this._model.ordered
      .filter(r => this._selected.has(r.id))
      .sort((a, b) => a.start_time - b.start_time)
      .map(r => r.id);
  }

  private _visible(): IRunRow[] {
    const rows = this._model.ordered;
    if (!this._filter) {
      return rows;
    }
    const text = this._filter.trim();
    return rows.filter(r => this._hits.has(r.id) || searchText(r).includes(text));
  }

  private _keyParams(rows: IRunRow[]): string[] {
    const values = new Map<string, Set<string>>();
    for (const r of rows) {
      for (const [k, v] of Object.entries(r.params)) {
        if (!values.has(k)) {
          values.set(k, new Set());
        }
        values.get(k)!.add(JSON.stringify(v));
      }
    }
    return [...values.entries()]
      .filter(([, v]) => v.size > 1)
      .sort((a, b) => b[1].size - a[1].size || a[0].localeCompare(b[0]))
      .slice(0, KEY_PARAMS)
      .map(([k]) => k);
  }

  render(): void {
    this._renderSprints();
    this._renderMetrics();
    const rows = this._visible();
    const keys = this._keyParams(rows);
    const metric = this._model.mainMetric;
    const total = this._model.total;
    const matching = Math.max(rows.length, this._matches ?? 0);
    const count = this._filter.trim()
      ? `${matching.toLocaleString()} of ${runCount(total)} ${matching === 1 ? 'matches' : 'match'}`
      : this._model.query.trim()
        ? `${runCount(total)} ${total === 1 ? 'matches' : 'match'} the query`
        : runCount(total);
    this._status.textContent = this._model.error
      ? `error: ${this._model.error}`
      : `${count}${metric ? ` · metric: ${metric}` : ''}${
          this._selected.size ? ` · ${this._selected.size} selected` : ''
        }`;
    this._compare.disabled = this._selected.size < 2;
    this._export.disabled = this._selected.size < 1;
    if (this._note) {
      this._status.textContent += ` · ${this._note}`;
    }
    if (this._model.busy) {
      this._status.textContent += ` · ${this._model.busy}`;
    }
    this._renderView();
    // each kernel's live sync to MLflow, as its thread last wrote it in the ledger
    this._sync.replaceChildren(
      ...this._model.sync.map(x => el('div', {}, `sync to ${x.uri}: ${x.state}${x.ended ? ' (kernel stopped)' : ''}`))
    );
    this._list.replaceChildren(...rows.slice(0, this._shown).map(r => this._row(r, keys, metric)));
    if (!rows.length && !this._model.error) {
      this._list.appendChild(
        el(
          'li',
          { class: 'nbexp-empty' },
          this._filter.trim()
            ? `No run matches “${this._filter.trim()}”.`
            : this._model.query.trim()
              ? 'No run matches the runs table’s query.'
              : 'No runs in this sprint yet: %load_ext nbexp and %nbexp track in a notebook.'
        )
      );
    }
    this._more.hidden = rows.length <= this._shown && this._model.loaded >= this._model.total;
  }

  /** The runs table's query and sort this list follows, each with a button that drops it. */
  private _renderView(): void {
    const m = this._model;
    const parts: HTMLElement[] = [];
    if (m.query.trim()) {
      const clear = el(
        'button',
        { class: 'nbexp-link', 'aria-label': 'Clear the query', title: 'List every run' },
        '✕'
      );
      clear.addEventListener('click', () => void m.setView({ query: '' }));
      const line = el('div', {});
      line.append(el('span', {}, 'query: '), el('code', { class: 'nbexp-query' }, m.query.trim()), clear);
      parts.push(line);
    }
    if (m.sort) {
      const clear = el('button', { class: 'nbexp-link', 'aria-label': 'Clear the sort', title: 'Newest first' }, '✕');
      clear.addEventListener('click', () => void m.setView({ sort: null, descending: true }));
      const line = el('div', {});
      line.append(el('span', {}, `sorted by ${m.sort} ${m.descending ? 'descending' : 'ascending'} `), clear);
      parts.push(line);
    }
    this._view.replaceChildren(...parts);
    this._view.hidden = !parts.length;
  }

  private _renderSprints(): void {
    const current = this._model.sprint;
    const options: [string, string][] = [
      ['today', 'Today'],
      ['yesterday', 'Yesterday (review)'],
      ['all', 'All sprints']
    ];
    for (const s of this._model.sprints) {
      options.push([s.id, `${s.id}${s.name ? ` · ${s.name}` : ''} (${s.runs})`]);
    }
    const signature = JSON.stringify(options);
    if (this._sprintSelect.dataset.options !== signature) {
      this._sprintSelect.replaceChildren(...options.map(([v, label]) => el('option', { value: v }, label)));
      this._sprintSelect.dataset.options = signature;
    }
    this._sprintSelect.value = current;
  }

  private _renderMetrics(): void {
    const metrics = this._model.metrics;
    const signature = JSON.stringify(metrics);
    if (this._metricSelect.dataset.options !== signature) {
      this._metricSelect.replaceChildren(...metrics.map(m => el('option', { value: m }, m)));
      this._metricSelect.dataset.options = signature;
    }
    this._metricSelect.hidden = !metrics.length;
    this._metricSelect.value = this._model.mainMetric ?? '';
  }

  private _row(r: IRunRow, keys: string[], metric: string | null): HTMLElement {
    const li = el('li', { class: `nbexp-run nbexp-status-${r.status}`, 'data-run-id': r.id });
    const label = r.name ? `${r.name} (${r.id})` : r.id;
    const check = el('input', { type: 'checkbox', 'aria-label': `Select run ${r.id}` });
    check.checked = this._selected.has(r.id);
    check.addEventListener('change', () => {
      if (check.checked) {
        this._selected.add(r.id);
      } else {
        this._selected.delete(r.id);
      }
      this._note = '';
      this.render();
    });
    const star = el(
      'button',
      {
        class: 'nbexp-star',
        'aria-label': `Star run ${r.id}`,
        'aria-pressed': String(Boolean(r.starred)),
        title: r.starred ? 'starred' : 'star'
      },
      r.starred ? '★' : '☆'
    );
    star.addEventListener('click', () => void this._model.edit(r.id, { starred: !r.starred }));
    const name = el('button', { class: 'nbexp-name', 'aria-label': `Show run ${r.id}`, title: label }, label);
    name.addEventListener('click', () => this._options.onOpen(r.id));
    const badge = el('span', { class: 'nbexp-badge', title: r.error ?? r.status }, r.status);
    const line1 = el('div', { class: 'nbexp-line' });
    line1.append(check, star, name, badge);
    const line2 = el('div', { class: 'nbexp-line nbexp-detail' });
    line2.append(el('span', {}, when(r.start_time)));
    for (const k of keys) {
      if (k in r.params) {
        line2.append(el('span', { class: 'nbexp-param' }, `${k}=${fmt(r.params[k])}`));
      }
    }
    if (metric && r.metrics[metric] !== undefined) {
      line2.append(el('span', { class: 'nbexp-metric' }, `${metric} ${fmt(r.metrics[metric])}`));
    }
    // the table's sort field, when the row does not show it already
    const by = this._model.sort;
    const shown = ['name', 'status', 'start_time', 'id', `metrics.${metric}`, ...keys.map(k => `params.${k}`)];
    if (by && 'sort_value' in r && !shown.includes(by)) {
      line2.append(
        el(
          'span',
          { class: 'nbexp-sortval', title: 'the runs table sorts by it' },
          `${by} ${r.sort_value === null || r.sort_value === undefined ? '–' : fieldText(by, r.sort_value)}`
        )
      );
    }
    if (r.tags.length) {
      line2.append(el('span', { class: 'nbexp-tags' }, r.tags.map(t => `#${t}`).join(' ')));
    }
    if (r.idle_hint) {
      line2.append(el('span', { class: 'nbexp-hint', title: r.idle_hint }, 'idle GPU'));
    }
    li.append(line1, line2);
    return li;
  }

  dispose(): void {
    window.clearTimeout(this._searchTimer);
    this._model.dispose();
    super.dispose();
  }
}
