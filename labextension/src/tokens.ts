/** Shapes of the /nbexp/api/ answers the sidebar reads. */

export type Status = 'running' | 'finished' | 'failed' | 'interrupted' | 'crashed';

export interface IRunRow {
  id: string;
  name: string | null;
  status: Status;
  sprint: string;
  kind: string;
  start_time: number;
  end_time: number | null;
  starred: number;
  note: string | null;
  tags: string[];
  error: string | null;
  idle_hint: string | null;
  gpu_util_mean: number | null;
  updated: number;
  params: Record<string, unknown>;
  metrics: Record<string, number | string | null>;
  data: Record<string, string>;
  /** The value of the runs table's sort field (when the runs are asked in its order). */
  sort_value?: unknown;
}

/** What a kernel's live sync to MLflow last said (`%nbexp track --sync URI`). */
export interface ISyncState {
  session: string;
  uri: string;
  state: string;
  behind: number;
  at: number;
  ended: number | null;
}

export interface IRunsPage {
  runs: IRunRow[];
  total: number;
  cursor: number;
  /** The sprint's main metric (the `metric=` asked for when the sprint has it), never the page's. */
  main_metric: string | null;
  /** Every metric key of the sprint's runs, best first. */
  metrics: string[];
  /** The live syncs to MLflow of the kernels writing the ledger (last day), newest first. */
  sync?: ISyncState[];
  offset: number;
  limit: number;
}

export interface ISprint {
  id: string;
  name: string | null;
  hypothesis: string | null;
  conclusion: string | null;
  runs: number;
  running: number;
}

export interface IFigure {
  data: any[];
  layout: any;
}

export interface ICompare {
  runs: { id: string; name: string | null; status: Status }[];
  param_diff: Record<string, unknown[]>;
  metrics: Record<string, ({ last: number | null } | null)[]>;
  metric_delta: Record<string, number | null>;
  /** Per metric, each run's last value minus the baseline's (the first run's; null for itself). */
  baseline_delta: Record<string, (number | null)[]>;
  /** Per metric, the index of the best run (lower is better for loss-like names), or null. */
  best: Record<string, number | null>;
  code_diff: string[];
  drift: { variable: string; column: string; flags: string[] }[];
  imbalance: { run: string; variable: string; column: string; minority_share: number }[];
  metric: string | null;
  figures: Record<string, IFigure>;
}
