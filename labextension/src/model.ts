/**
 * The one model of the sprint's runs that the sidebar and the runs table both show: the sprint, the table's
 * query and sort, the main metric, and the runs kept live by polling the change cursor. The sidebar lists
 * them compactly in the view's order; the table asks its pages with the same query and sort. `changed`:
 * anything shown changed; `viewChanged`: the sprint, query or sort changed; `runsChanged`: a poll saw runs
 * start, change or end (the table reloads the rows on screen).
 */
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from './api';
import { IRunRow, IRunsPage, ISprint, ISyncState } from './tokens';

export const PAGE = 200;
/** The largest page the server gives (its `max_page`): the most runs a view is asked again at once. */
const MAX_PAGE = 1000;
const METRIC_KEY = 'nbexp:main-metric:';

/** "1 run", "2 runs", "1,000 runs": a count of runs as every view says it. */
export function runCount(n: number): string {
  return `${n.toLocaleString()} ${n === 1 ? 'run' : 'runs'}`;
}

/** The main metric the user picked for a sprint, remembered in this browser; null when none. */
function pickedMetric(sprint: string): string | null {
  try {
    return window.localStorage.getItem(METRIC_KEY + sprint);
  } catch {
    return null; // storage disabled: the server's default
  }
}

/** The runs table's view: its query (the table's language, '' for none) and sort field (null: newest first). */
export interface IView {
  query: string;
  sort: string | null;
  descending: boolean;
}

export class RunsModel {
  readonly changed: ISignal<RunsModel, void>;
  readonly viewChanged: ISignal<RunsModel, void>;
  readonly runsChanged: ISignal<RunsModel, void>;
  runs = new Map<string, IRunRow>();
  /** The runs table's query, shared: the sidebar lists only the runs it matches. */
  query = '';
  /** The runs table's sort field (null: newest first), shared: the sidebar lists runs in its order. */
  sort: string | null = null;
  descending = true;
  sprints: ISprint[] = [];
  sprint = 'today';
  total = 0;
  /** The sprint's main metric: the user's pick, else the server's default from the whole sprint. */
  mainMetric: string | null = null;
  /** The sprint's metric keys, best first (the server ranks them over every run of the sprint). */
  metrics: string[] = [];
  /** The kernels' live syncs to MLflow: synced / behind by N points / server unreachable. */
  sync: ISyncState[] = [];
  error: string | null = null;
  /** "ledger busy, retrying (n/5)" while an edit waits for another process's write lock. */
  busy: string | null = null;
  private _changed = new Signal<RunsModel, void>(this);
  private _viewChanged = new Signal<RunsModel, void>(this);
  private _runsChanged = new Signal<RunsModel, void>(this);
  /** The runs in the server's order for a query or sort (null: newest first, from the runs held). */
  private _order: string[] | null = null;
  /** Bumped by a sprint or view change: an answer asked for before it is dropped. */
  private _generation = 0;
  private _cursor: number | null = null;
  /** Each run as the change poll last gave it (JSON). */
  private _seen = new Map<string, string>();
  private _loaded = 0;
  private _searches = 0;
  private _poll: Poll;
  private _picked = new Map<string, string>();

  constructor(interval = 1000) {
    this.changed = this._changed;
    this.viewChanged = this._viewChanged;
    this.runsChanged = this._runsChanged;
    this._poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval, backoff: true, max: 30 * 1000 },
      standby: 'when-hidden'
    });
  }

  /** Whether a query or sort of the table orders and filters the runs (else: every run, newest first). */
  get viewed(): boolean {
    return this.query.trim() !== '' || this.sort !== null;
  }

  /** In the table's order when it has a query or sort (runs found by a search after them), else newest first. */
  get ordered(): IRunRow[] {
    const newest = (rows: IRunRow[]) => rows.sort((a, b) => b.start_time - a.start_time);
    if (!this._order) {
      return newest([...this.runs.values()]);
    }
    const listed = new Set(this._order);
    const rows = this._order.map(id => this.runs.get(id)).filter((r): r is IRunRow => r !== undefined);
    return [...rows, ...newest([...this.runs.values()].filter(r => !listed.has(r.id)))];
  }

  /** The query and sort arguments of GET runs for the view (none: newest first). */
  private _viewArgs(): Record<string, string | undefined> {
    return {
      query: this.query.trim() ? this.query : undefined,
      by: this.sort ?? undefined,
      order: this.sort ? (this.descending ? 'desc' : 'asc') : undefined
    };
  }

  /** Change the table's query and sort (both views follow): the runs are asked again. */
  async setView(view: Partial<IView>): Promise<void> {
    const next = { query: this.query, sort: this.sort, descending: this.descending, ...view };
    if (next.query === this.query && next.sort === this.sort && next.descending === this.descending) {
      return;
    }
    this.query = next.query;
    this.sort = next.sort;
    this.descending = next.descending;
    this._viewChanged.emit();
    await this._reload();
  }

  get loaded(): number {
    return this._loaded;
  }

  async setSprint(sprint: string): Promise<void> {
    this.sprint = sprint;
    this.mainMetric = null;
    this.metrics = [];
    this._viewChanged.emit();
    await this._reload();
  }

  /** The first page again, from scratch (a sprint or view change). */
  private async _reload(): Promise<void> {
    this._generation++;
    this.runs.clear();
    this._order = null;
    this._seen.clear();
    this._cursor = null;
    this._loaded = 0;
    await this.refresh();
  }

  /** Pick the sprint's main metric (remembered per sprint); the server confirms it on every page. */
  setMetric(metric: string): void {
    this._picked.set(this.sprint, metric);
    try {
      window.localStorage.setItem(METRIC_KEY + this.sprint, metric);
    } catch {
      // storage disabled: the pick lasts until the page reloads
    }
    this.mainMetric = metric;
    this._changed.emit();
  }

  private _metricArg(): string | undefined {
    return (this._picked.get(this.sprint) ?? pickedMetric(this.sprint)) || undefined;
  }

  /** First call (or after a sprint change): a page; then only what changed since the cursor. */
  async refresh(): Promise<void> {
    const generation = this._generation;
    try {
      if (this._cursor === null) {
        const [page, sprints] = await Promise.all([
          requestAPI<IRunsPage>('runs', {
            sprint: this.sprint,
            limit: PAGE,
            metric: this._metricArg(),
            ...this._viewArgs()
          }),
          requestAPI<{ sprints: ISprint[] }>('sprints')
        ]);
        if (generation !== this._generation) {
          return; // the sprint or view changed meanwhile: its own first page is on its way
        }
        this.sprints = sprints.sprints;
        this.runs.clear();
        this._take(page);
        this._order = this.viewed ? page.runs.map(r => r.id) : null;
        this._loaded = page.runs.length;
        this.total = page.total;
      } else {
        const page = await requestAPI<IRunsPage>('runs', {
          sprint: this.sprint,
          since: this._cursor,
          limit: 1000,
          metric: this._metricArg()
        });
        if (generation !== this._generation) {
          return;
        }
        // running runs come with every poll: only a run new or different from its last poll is a change
        const changed = page.runs.filter(r => {
          const text = JSON.stringify(r);
          const same = this._seen.get(r.id) === text;
          this._seen.set(r.id, text);
          return !same;
        });
        if (changed.length && this.viewed) {
          // runs changed: which of them the query keeps, and where the sort puts them, the server says
          const view = await requestAPI<IRunsPage>('runs', {
            sprint: this.sprint,
            limit: Math.min(Math.max(this._loaded, PAGE), MAX_PAGE),
            metric: this._metricArg(),
            ...this._viewArgs()
          });
          if (generation !== this._generation) {
            return;
          }
          this.runs.clear();
          this._take(view, false);
          this._order = view.runs.map(r => r.id);
          this._loaded = view.runs.length;
          this.total = view.total;
          this._take({ ...page, runs: [] });
        } else if (!this.viewed) {
          const fresh = page.runs.filter(r => !this.runs.has(r.id)).length;
          this._take(page);
          this.total += fresh;
          this._loaded += fresh;
        } else {
          // nothing changed under a query: the poll's runs (running ones come every time) are not the query's
          // to list, only the server's answer for the view is
          this._take({ ...page, runs: [] });
        }
        if (changed.length) {
          this._runsChanged.emit();
        }
      }
      this.error = null;
    } catch (e) {
      if (generation !== this._generation) {
        return;
      }
      this.error = (e as Error).message;
      this._changed.emit();
      throw e;
    }
    this._changed.emit();
  }

  async more(): Promise<void> {
    const generation = this._generation;
    const page = await requestAPI<IRunsPage>('runs', {
      sprint: this.sprint,
      limit: PAGE,
      offset: this._loaded,
      metric: this._metricArg(),
      ...this._viewArgs()
    });
    if (generation !== this._generation) {
      return;
    }
    this._take(page, false);
    this._order?.push(...page.runs.map(r => r.id).filter(id => !this._order!.includes(id)));
    this._loaded += page.runs.length;
    this._changed.emit();
  }

  /**
   * Runs of the sprint matching `text` on the server (id, name, status, note, tags, params and the
   * code of the run's cells), merged into the loaded runs; the number matching in all and the ids of
   * the first page, or null when superseded by a newer search. Loaded runs are kept: the paging
   * offset still counts the unfiltered list.
   */
  async search(text: string): Promise<{ total: number; ids: string[] } | null> {
    const ticket = ++this._searches;
    const generation = this._generation;
    const page = await requestAPI<IRunsPage>('runs', {
      sprint: this.sprint,
      q: text,
      limit: PAGE,
      metric: this._metricArg(),
      query: this.query.trim() ? this.query : undefined // only the runs the table's query keeps
    });
    if (ticket !== this._searches || generation !== this._generation) {
      return null;
    }
    this._take(page, false);
    this._changed.emit();
    return { total: page.total, ids: page.runs.map(r => r.id) };
  }

  async edit(id: string, body: Record<string, unknown>): Promise<void> {
    const row = await requestAPI<IRunRow>(
      `runs/${id}`,
      {},
      { method: 'PATCH', body: JSON.stringify(body) },
      message => {
        this.busy = message;
        this._changed.emit();
      }
    );
    this.runs.set(id, { ...this.runs.get(id), ...row });
    this._changed.emit();
  }

  private _take(page: IRunsPage, moveCursor = true): void {
    for (const r of page.runs) {
      this.runs.set(r.id, r);
    }
    if (moveCursor) {
      this._cursor = page.cursor;
    }
    // the sprint's metric, ranked over all its runs on the server: the same whatever this page holds
    // (a page asked for before a new pick does not undo it)
    this.metrics = page.metrics ?? [];
    this.sync = page.sync ?? this.sync;
    const picked = this._metricArg();
    this.mainMetric = picked && this.metrics.includes(picked) ? picked : page.main_metric;
  }

  dispose(): void {
    this._poll.dispose();
  }
}
