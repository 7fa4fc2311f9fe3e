/** The sidebar's model: the selected sprint's runs, kept live by polling the change cursor. */
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from './api';
import { IRunRow, IRunsPage, ISprint, ISyncState } from './tokens';

export const PAGE = 200;
const METRIC_KEY = 'nbexp:main-metric:';

/** The main metric the user picked for a sprint, remembered in this browser; null when none. */
function pickedMetric(sprint: string): string | null {
  try {
    return window.localStorage.getItem(METRIC_KEY + sprint);
  } catch {
    return null; // storage disabled: the server's default
  }
}

export class RunsModel {
  readonly changed: ISignal<RunsModel, void>;
  runs = new Map<string, IRunRow>();
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
  private _cursor: number | null = null;
  private _loaded = 0;
  private _searches = 0;
  private _poll: Poll;
  private _picked = new Map<string, string>();

  constructor(interval = 1000) {
    this.changed = this._changed;
    this._poll = new Poll({
      factory: () => this.refresh(),
      frequency: { interval, backoff: true, max: 30 * 1000 },
      standby: 'when-hidden'
    });
  }

  /** Newest first. */
  get ordered(): IRunRow[] {
    return [...this.runs.values()].sort((a, b) => b.start_time - a.start_time);
  }

  get loaded(): number {
    return this._loaded;
  }

  async setSprint(sprint: string): Promise<void> {
    this.sprint = sprint;
    this.mainMetric = null;
    this.metrics = [];
    this.runs.clear();
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
    try {
      if (this._cursor === null) {
        const [page, sprints] = await Promise.all([
          requestAPI<IRunsPage>('runs', { sprint: this.sprint, limit: PAGE, metric: this._metricArg() }),
          requestAPI<{ sprints: ISprint[] }>('sprints')
        ]);
        this.sprints = sprints.sprints;
        this._take(page);
        this._loaded = page.runs.length;
        this.total = page.total;
      } else {
        const page = await requestAPI<IRunsPage>('runs', {
          sprint: this.sprint,
          since: this._cursor,
          limit: 1000,
          metric: this._metricArg()
        });
        const fresh = page.runs.filter(r => !this.runs.has(r.id)).length;
        this._take(page);
        this.total += fresh;
        this._loaded += fresh;
      }
      this.error = null;
    } catch (e) {
      this.error = (e as Error).message;
      this._changed.emit();
      throw e;
    }
    this._changed.emit();
  }

  async more(): Promise<void> {
    const page = await requestAPI<IRunsPage>('runs', {
      sprint: this.sprint,
      limit: PAGE,
      offset: this._loaded,
      metric: this._metricArg()
    });
    this._take(page, false);
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
    const page = await requestAPI<IRunsPage>('runs', {
      sprint: this.sprint,
      q: text,
      limit: PAGE,
      metric: this._metricArg()
    });
    if (ticket !== this._searches) {
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
