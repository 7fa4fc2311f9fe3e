/** The main-area comparison: param diff, metrics, a chart per metric, parallel coordinates and a scatter,
 * data drift, system, per-cell code diff. Every figure is built on the server (nbexp/figures.py), the same
 * that `nbexp.compare` shows in a notebook; a run has one colour in all of them, and hiding it in any
 * legend hides it in every chart. */
import { Widget } from '@lumino/widgets';

import { requestAPI } from '../api';
import { ICompare } from '../tokens';
import { explainAction } from './Explain';
import { el, fmt, table } from './format';
import { diffBlock } from './highlight';
import { LinkedCharts } from './plot';
import { compareOutputs } from './Outputs';

const TITLE_LENGTH = 60;
const ABSENT = '<absent>'; // a param a run does not have, in the compare answer (analysis.compare)

/** One cell of the per-cell code diff (nbexp.analysis.compare.cell_diff). */
export interface ICodeBlock {
  status: 'same' | 'changed' | 'added' | 'removed';
  count?: number;
  lines?: [string, string][];
}

/** What /nbexp/api/compare answers beyond ICompare. */
export interface ICompareAnswer extends ICompare {
  params: Record<string, unknown[]>;
  baseline: number;
  code_cells: ICodeBlock[];
  colours: Record<string, string>;
  x_param: string | null;
  system?: Record<string, number | null>[]; // per run, its aggregates (analysis.compare.SYSTEM_AGGREGATES)
}

/** The system aggregates listed per run, with their column heads, in the order shown. */
const SYSTEM_COLUMNS: [string, string][] = [
  ['cpu_mean', 'CPU mean %'],
  ['rss_peak_mb', 'peak RSS MB'],
  ['gpu_util_mean', 'GPU util mean %'],
  ['gpu_mem_peak_mb', 'peak GPU memory MB'],
  ['energy_wh', 'energy Wh']
];

/**
 * The System tab's table: a row per run with the aggregates the ledger recorded (columns no run recorded
 * left out, "not recorded" where one run lacks one), or a sentence when no run has any.
 */
export function systemTable(c: ICompareAnswer): HTMLElement {
  const rows = c.system ?? [];
  const columns = SYSTEM_COLUMNS.filter(([k]) => rows.some(r => r?.[k] !== null && r?.[k] !== undefined));
  if (!columns.length) {
    return el('p', {}, 'System: no CPU, memory or GPU aggregates were recorded for these runs.');
  }
  return table(
    'System per run',
    ['run', ...columns.map(([, h]) => h)],
    c.runs.map((r, i) => [
      r.name ? `${r.name} (${r.id})` : r.id,
      ...columns.map(([k]) => {
        const v = rows[i]?.[k];
        return v === null || v === undefined ? 'not recorded' : fmt(v);
      })
    ])
  );
}

/**
 * A comparison's tab title from what differs: "C=0.1 vs C=10". The param with the most distinct values
 * comes first, alone when it tells every run apart, else with a second one; with no param differing, or
 * when one of those params is absent from a run, the runs' names, else their ids.
 */
export function compareTitle(c: ICompare): string {
  const n = c.runs.length;
  const distinct = (values: unknown[]) => new Set(values.map(v => JSON.stringify(v))).size;
  const ranked = Object.entries(c.param_diff)
    .sort((a, b) => distinct(b[1]) - distinct(a[1]) || a[0].localeCompare(b[0]))
    .map(([k]) => k);
  let keys = ranked.length && distinct(c.param_diff[ranked[0]]) === n ? ranked.slice(0, 1) : ranked.slice(0, 2);
  if (keys.some(k => c.param_diff[k].some(v => v === ABSENT))) {
    keys = []; // a run without the param (another experiment's): "C=0.01 vs C=<absent>" says nothing, names do
  }
  const value = (v: unknown) => (v === null ? 'none' : fmt(v));
  const labels = c.runs.map((r, i) =>
    keys.length ? keys.map(k => `${k}=${value(c.param_diff[k][i])}`).join(', ') : (r.name ?? r.id)
  );
  const title = labels.join(' vs ');
  return title.length <= TITLE_LENGTH ? title : `${title.slice(0, TITLE_LENGTH - 1)}…`;
}

const TABS: [string, string][] = [
  ['overview', 'Params & metrics'],
  ['charts', 'Charts'],
  ['parallel', 'Parallel coordinates'],
  ['data', 'Data'],
  ['system', 'System'],
  ['code', 'Code diff'],
  ['outputs', 'Outputs']
];

/** A labelled select; `onChange` hears the chosen value. */
function select(label: string, options: [string, string][], value: string, onChange: (v: string) => void) {
  const box = el('label', { class: 'nbexp-control' }, `${label} `);
  const s = el('select', { 'aria-label': label, class: 'jp-mod-styled' });
  for (const [v, text] of options) {
    const o = el('option', { value: v }, text);
    o.selected = v === value;
    s.appendChild(o);
  }
  s.addEventListener('change', () => onChange(s.value));
  box.appendChild(s);
  return box;
}

export class CompareView extends Widget {
  private _ids: string[];
  private _data: ICompareAnswer | null = null;
  private _tabs: HTMLElement;
  private _body: HTMLElement;
  private _current = 'overview';
  private _charts = new LinkedCharts();
  private _loads = 0; // the newest load(): an older answer arriving later is dropped
  private _renders = 0; // the newest showTab(): an older one still drawing adds nothing more
  /** The user's choices, sent to the server: null lets it pick. */
  private _options: { metric: string | null; params: string[] | null; x: string | null; baseline: string | null } = {
    metric: null,
    params: null,
    x: null,
    baseline: null
  };

  constructor(ids: string[]) {
    super();
    this._ids = ids;
    this.id = `nbexp-compare-${ids.join('-')}`;
    this.title.label = `Compare ${ids.length} runs`;
    this.title.closable = true;
    this.addClass('nbexp-compare');
    this._tabs = el('div', { role: 'tablist', 'aria-label': 'Comparison views' });
    for (const [key, label] of TABS) {
      const tab = el('button', { role: 'tab', 'aria-selected': String(key === this._current), 'data-tab': key }, label);
      tab.addEventListener('click', () => void this.showTab(key));
      this._tabs.appendChild(tab);
    }
    this._body = el('div', { class: 'nbexp-compare-body', role: 'tabpanel' }, 'Loading…');
    this.node.append(this._tabs, explainAction(ids), this._body);
    void this.load();
  }

  /** The runs hidden in every chart (clicked off in a legend). */
  get hiddenRuns(): ReadonlySet<string> {
    return this._charts.hidden;
  }

  async load(): Promise<void> {
    const o = this._options;
    const mine = ++this._loads;
    try {
      const data = await requestAPI<ICompareAnswer>('compare', {
        runs: this._ids.join(','),
        metric: o.metric ?? undefined,
        params: o.params === null ? undefined : o.params.join(','),
        x: o.x ?? undefined,
        baseline: o.baseline ?? undefined
      });
      if (mine !== this._loads) {
        return; // the user chose again while this was asked: the later answer is the one shown
      }
      this._data = data;
      this.title.label = compareTitle(this._data);
      this.title.caption = `Compare runs ${this._ids.join(', ')}`;
      await this.showTab(this._current);
    } catch (e) {
      if (mine === this._loads) {
        this._body.textContent = `Could not compare: ${(e as Error).message}`;
      }
    }
  }

  private _set(change: Partial<CompareView['_options']>): void {
    Object.assign(this._options, change);
    void this.load();
  }

  async showTab(key: string): Promise<void> {
    this._current = key;
    for (const tab of Array.from(this._tabs.children)) {
      tab.setAttribute('aria-selected', String((tab as HTMLElement).dataset.tab === key));
    }
    const c = this._data;
    if (!c) {
      return;
    }
    this._body.replaceChildren();
    const mine = ++this._renders;
    const ids = c.runs.map(r => r.id);
    const figure = async (name: string, label: string): Promise<void> => {
      if (!c.figures[name] || mine !== this._renders) {
        return; // a newer rendering has replaced this one: drawing on would add stale charts to it
      }
      const box = el('div', { class: 'nbexp-chart', 'data-figure': name, role: 'figure', 'aria-label': label });
      this._body.appendChild(box);
      await this._charts.add(box, c.figures[name]);
    };
    if (key === 'overview') {
      this._body.appendChild(el('h3', {}, 'Params that differ'));
      const diff = Object.entries(c.param_diff);
      this._body.appendChild(
        diff.length
          ? table(
              'Param diff',
              ['param', ...ids],
              diff.map(([k, v]) => [k, ...v])
            )
          : el('p', {}, 'Same params.')
      );
      const base = c.baseline ?? 0;
      this._body.appendChild(el('h3', {}, `Metrics (last value; ★ best; Δ against the baseline ${ids[base]})`));
      this._body.appendChild(
        select(
          'Baseline run',
          c.runs.map(r => [r.id, `${r.id} ${r.name ?? ''}`.trim()]),
          c.runs[base].id,
          v => this._set({ baseline: v })
        )
      );
      const metrics = Object.entries(c.metrics);
      const others = ids.map((id, i) => [id, i] as [string, number]).filter(([, i]) => i !== base);
      const deltas = others.map(([id]) => (ids.length === 2 ? `Δ vs ${ids[base]}` : `Δ ${id} vs ${ids[base]}`));
      this._body.appendChild(
        metrics.length
          ? table(
              'Metrics',
              ['metric', ...ids, ...deltas],
              metrics.map(([k, v]) => [
                k,
                ...v.map((s, i) => (c.best?.[k] === i ? `★ ${fmt(s?.last ?? null)}` : s ? s.last : null)),
                ...others.map(([, i]) => c.baseline_delta?.[k]?.[i] ?? null)
              ])
            )
          : el('p', {}, 'No metrics recorded.')
      );
      await figure('grid', 'Metric charts');
    } else if (key === 'charts') {
      await figure('grid', 'Metric charts');
    } else if (key === 'parallel') {
      await this._parallel(c, figure);
    } else if (key === 'system') {
      this._body.appendChild(el('h3', {}, 'Per run'));
      this._body.appendChild(systemTable(c));
      await figure('system', 'System timeline');
    } else if (key === 'data') {
      const flags = c.drift.map(d => `${d.variable}.${d.column}: ${d.flags.join('; ')}`);
      flags.push(
        ...c.imbalance.map(
          i => `${i.run} ${i.variable}.${i.column}: imbalanced (minority ${(100 * i.minority_share).toFixed(1)}%)`
        )
      );
      const list = el('ul', { 'aria-label': 'Data flags' });
      list.append(
        ...(flags.length ? flags : ['Data: no drift or imbalance flagged (or not recorded).']).map(f => el('li', {}, f))
      );
      this._body.appendChild(list);
      await figure('drift_hist', 'Drift distributions');
      await figure('drift', 'Drift per column');
      await figure('classes', 'Class balance');
    } else if (key === 'code') {
      await this._code(c);
    } else if (key === 'outputs') {
      this._body.appendChild(compareOutputs(c.runs)); // figures side by side per cell (components/Outputs.ts)
    }
  }

  /** Parallel coordinates over the params the user ticks, against the metric chosen; a scatter of one param. */
  private async _parallel(c: ICompareAnswer, figure: (name: string, label: string) => Promise<void>): Promise<void> {
    const metrics = Object.keys(c.metrics);
    const varied = Object.keys(c.param_diff);
    const bar = el('div', { class: 'nbexp-controls' });
    if (metrics.length) {
      bar.appendChild(
        select(
          'Metric',
          metrics.map(m => [m, m]),
          c.metric ?? metrics[0],
          v => this._set({ metric: v })
        )
      );
    }
    if (varied.length) {
      bar.appendChild(
        select(
          'Scatter param',
          varied.map(p => [p, p]),
          c.x_param ?? varied[0],
          v => this._set({ x: v })
        )
      );
    }
    this._body.appendChild(bar);
    if (varied.length) {
      const chosen = new Set(this._options.params ?? varied.slice(0, 7));
      const group = el('fieldset', { class: 'nbexp-param-picker', 'aria-label': 'Parallel coordinates params' });
      group.appendChild(el('legend', {}, 'Axes (params that differ)'));
      for (const p of varied) {
        const label = el('label', {});
        const box = el('input', { type: 'checkbox', 'aria-label': `Axis ${p}` });
        box.checked = chosen.has(p);
        box.addEventListener('change', () => {
          const picked = Array.from(group.querySelectorAll('input'))
            .filter(b => (b as HTMLInputElement).checked)
            .map(b => b.getAttribute('aria-label')!.slice('Axis '.length));
          this._set({ params: picked });
        });
        label.append(box, ` ${p}`);
        group.appendChild(label);
      }
      this._body.appendChild(group);
    }
    await figure('parallel', 'Parallel coordinates');
    await figure('scatter', 'Param against metric');
    await figure('search', 'Search candidates'); // a hyperparameter search's candidates, next to the runs' params
  }

  /** The code of the first and last run, cell by cell: the same cells folded, changed ones as coloured diffs. */
  private async _code(c: ICompareAnswer): Promise<void> {
    const ids = c.runs.map(r => r.id);
    const region = el('div', { role: 'region', 'aria-label': 'Code diff' });
    region.appendChild(
      el(
        'p',
        {},
        `Run ${ids[ids.length - 1]} against run ${ids[0]}, cell by cell; execution counts are not code (ignored).`
      )
    );
    this._body.appendChild(region);
    const blocks = c.code_cells ?? [];
    if (!blocks.some(b => b.status !== 'same')) {
      region.appendChild(el('p', { class: 'nbexp-same' }, 'Same code.'));
      return;
    }
    let cell = 0;
    for (const b of blocks) {
      if (b.status === 'same') {
        const n = b.count ?? 0;
        region.appendChild(
          el(
            'p',
            { class: 'nbexp-same' },
            n === 1 ? `cell ${cell + 1} the same` : `cells ${cell + 1}–${cell + n} the same`
          )
        );
        cell += n;
        continue;
      }
      cell += b.status === 'removed' ? 0 : 1;
      const label = `Cell ${b.status === 'removed' ? `removed after ${cell}` : cell}: ${b.status}`;
      region.appendChild(el('h4', {}, label));
      region.appendChild(await diffBlock(b.lines ?? [], label));
    }
  }
}
