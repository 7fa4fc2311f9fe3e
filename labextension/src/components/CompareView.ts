/** The main-area comparison: param diff, metrics, a chart per metric, parallel coordinates and a scatter,
 * data drift, system, per-cell code diff. Every figure is built on the server (nbexp/figures.py), the same
 * that `nbexp.compare` shows in a notebook; a run has one colour in all of them, and hiding it in any
 * legend hides it in every chart. While a compared run is running, the view asks again and redraws what changed. */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { requestAPI } from '../api';
import { ICompare } from '../tokens';
import { explainAction } from './Explain';
import { el, fmt, table } from './format';
import { diffBlock } from './highlight';
import { LinkedCharts, purgeCharts } from './plot';
import { compareOutputs } from './Outputs';

const TITLE_LENGTH = 60;
/** While a compared run is running, the comparison is asked again this often (the sidebar polls every second;
 * a comparison builds every figure on the server, so half as often). */
export const COMPARE_POLL_MS = 2000;
/** The tabs a refresh redraws (the code diff and the outputs do not change while a run logs). */
const LIVE_TABS = new Set(['overview', 'charts', 'parallel', 'data', 'system']);
const ABSENT = '<absent>'; // a param a run does not have, in the compare answer (analysis.compare)

/** One cell of the per-cell code diff (nbexp.analysis.compare.cell_diff). */
export interface ICodeBlock {
  status: 'same' | 'changed' | 'added' | 'removed';
  count?: number;
  lines?: [string, string][];
}

/** A module of the notebook's own code that differs between two runs (nbexp.analysis.compare.module_blocks). */
export interface IModuleBlock {
  module: string;
  status: 'changed' | 'added' | 'removed';
  lines: [string, string][];
  sha256_a: string | null;
  sha256_b: string | null;
}

/** A literal param and the estimator params set from it, shown once (nbexp.analysis.compare.param_aliases). */
type Aliases = Record<string, string[]>;

/** What /nbexp/api/compare answers beyond ICompare. */
export interface ICompareAnswer extends ICompare {
  params: Record<string, unknown[]>;
  param_aliases?: Aliases;
  baseline: number;
  code_cells: ICodeBlock[];
  /** Per run, its code against the baseline's, cell by cell; null for the baseline itself. */
  code_by_run?: (ICodeBlock[] | null)[];
  /** The notebook's own modules (train_utils.py) the first and the last run trained with, where they differ. */
  module_blocks?: IModuleBlock[];
  colours: Record<string, string>;
  x_param: string | null;
  system?: Record<string, number | null>[]; // per run, its aggregates (analysis.compare.SYSTEM_AGGREGATES)
}

/**
 * The params that differ as the views list them: `[key, label, values]`, a literal and the estimator params set
 * from it (`C` and `model.C`, the same values in every run: param_aliases) one entry, keyed by the literal and
 * labelled by every name ("C / model.C"), at the literal's place.
 */
export function variedParams(c: ICompare & { param_aliases?: Aliases }): [string, string, unknown[]][] {
  const aliases = c.param_aliases ?? {};
  const hidden = new Set(Object.values(aliases).flat());
  return Object.entries(c.param_diff)
    .filter(([k]) => !hidden.has(k))
    .map(([k, v]) => [k, [k, ...(aliases[k] ?? [])].join(' / '), v]);
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
export function compareTitle(c: ICompare & { param_aliases?: Aliases }): string {
  const n = c.runs.length;
  const distinct = (values: unknown[]) => new Set(values.map(v => JSON.stringify(v))).size;
  const ranked = variedParams(c) // "C=0.1", not "C=0.1, model.C=0.1": a param set from a literal counts once
    .map(([k, , v]) => [k, v] as [string, unknown[]])
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
  private _body: HTMLElement; // the panel being drawn (the one shown, or the next one while a refresh draws it)
  private _shown: HTMLElement; // the panel on show
  private _next: HTMLElement | null = null; // a refresh's panel, drawn out of sight, swapped in when complete
  private _timer: number | null = null;
  private _answer = ''; // the last answer, as text: a refresh that brings nothing new redraws nothing
  private _current = 'overview';
  private _charts = new LinkedCharts();
  private _loads = 0; // the newest load(): an older answer arriving later is dropped
  private _choosing = 0; // the user's loads in flight: a refresh waits for them
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
    this._shown = this._body;
    this.node.append(this._tabs, explainAction(ids), this._body);
    void this.load();
  }

  /** Whether a compared run is still running (then the comparison refreshes while on show). */
  get live(): boolean {
    return !!this._data?.runs.some(r => r.status === 'running');
  }

  /** Ask again in COMPARE_POLL_MS while a compared run is running and this view is on show; else stop. */
  private _schedule(): void {
    this._stopPolling();
    if (!this.isDisposed && this.isVisible && this.live) {
      this._timer = window.setTimeout(() => {
        this._timer = null;
        void this.load(true);
      }, COMPARE_POLL_MS);
    }
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._schedule();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._schedule();
  }

  protected onBeforeHide(msg: Message): void {
    this._stopPolling();
    super.onBeforeHide(msg);
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopPolling();
    super.onBeforeDetach(msg);
  }

  dispose(): void {
    this._stopPolling();
    purgeCharts(this.node);
    super.dispose();
  }

  /** The runs hidden in every chart (clicked off in a legend). */
  get hiddenRuns(): ReadonlySet<string> {
    return this._charts.hidden;
  }

  /**
   * Ask the server for the comparison with the user's choices and draw the open tab. `refresh` (the poll while a
   * run is running): redraw only when the answer changed, only a tab whose content a running run changes, out
   * of sight and swapped in when drawn, so the user's choices, hidden runs, open tab and scroll stay.
   */
  async load(refresh = false): Promise<void> {
    if (refresh && this._choosing > 0) {
      this._schedule(); // the user's own choice is being asked for: its answer is the one to draw
      return;
    }
    const o = this._options;
    const mine = ++this._loads;
    if (!refresh) {
      this._choosing++;
    }
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
      const text = JSON.stringify(data);
      const changed = text !== this._answer;
      this._answer = text;
      this._data = data;
      this.title.label = compareTitle(this._data);
      this.title.caption = `Compare runs ${this._ids.join(', ')}`;
      this._schedule();
      if (!refresh) {
        await this.showTab(this._current);
      } else if (changed && LIVE_TABS.has(this._current)) {
        await this.showTab(this._current, true);
      }
    } catch (e) {
      if (mine === this._loads && !refresh) {
        this._shown.textContent = `Could not compare: ${(e as Error).message}`;
      } else if (refresh && mine === this._loads) {
        this._schedule(); // a refresh that failed (the server restarting) leaves the view as it was
      }
    } finally {
      if (!refresh) {
        this._choosing--;
      }
    }
  }

  private _set(change: Partial<CompareView['_options']>): void {
    Object.assign(this._options, change);
    void this.load();
  }

  /** Draw tab `key`; `quietly` (a refresh): into a panel out of sight, swapped for the one on show once drawn. */
  async showTab(key: string, quietly = false): Promise<void> {
    this._current = key;
    for (const tab of Array.from(this._tabs.children)) {
      tab.setAttribute('aria-selected', String((tab as HTMLElement).dataset.tab === key));
    }
    const c = this._data;
    if (!c) {
      return;
    }
    const mine = ++this._renders;
    if (this._next) {
      this._next.remove(); // a refresh still drawing: this rendering replaces it
      purgeCharts(this._next);
    }
    this._next = null;
    const panel = el('div', { class: 'nbexp-compare-body', role: 'tabpanel' });
    if (quietly) {
      panel.setAttribute('aria-hidden', 'true');
      const width = this._shown.clientWidth;
      Object.assign(panel.style, { position: 'absolute', visibility: 'hidden', top: '0', width: `${width}px` });
      this.node.appendChild(panel);
      this._next = panel;
    } else {
      const old = this._shown;
      old.replaceWith(panel);
      this._shown = panel;
      purgeCharts(old);
    }
    this._body = panel;
    try {
      await this._draw(key, c, mine);
    } finally {
      if (quietly && mine === this._renders && this._next === panel) {
        const top = this.node.scrollTop;
        panel.removeAttribute('aria-hidden');
        panel.removeAttribute('style');
        const old = this._shown;
        old.replaceWith(panel);
        this._shown = panel;
        purgeCharts(old);
        this._next = null;
        this.node.scrollTop = top;
      }
    }
  }

  private async _draw(key: string, c: ICompareAnswer, mine: number): Promise<void> {
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
      const diff = variedParams(c);
      this._body.appendChild(
        diff.length
          ? table(
              'Param diff',
              ['param', ...ids],
              diff.map(([, label, v]) => [label, ...v])
            )
          : el('p', {}, 'Same params.')
      );
      const base = c.baseline ?? 0;
      this._body.appendChild(el('h3', {}, `Metrics (last value; ★ best; Δ against the baseline ${ids[base]})`));
      this._body.appendChild(this._baselineSelect(c));
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
    const entries = variedParams(c);
    const varied = entries.map(([k]) => k);
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
          entries.map(([k, label]) => [k, label]),
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
      for (const [p, name] of entries) {
        const label = el('label', {});
        const box = el('input', { type: 'checkbox', 'aria-label': `Axis ${name}`, 'data-param': p });
        box.checked = chosen.has(p);
        box.addEventListener('change', () => {
          const picked = Array.from(group.querySelectorAll('input'))
            .filter(b => (b as HTMLInputElement).checked)
            .map(b => (b as HTMLElement).dataset.param!);
          this._set({ params: picked });
        });
        label.append(box, ` ${name}`);
        group.appendChild(label);
      }
      this._body.appendChild(group);
    }
    await figure('parallel', 'Parallel coordinates');
    await figure('scatter', 'Param against metric');
    await figure('search', 'Search candidates'); // a hyperparameter search's candidates, next to the runs' params
  }

  /** The baseline picker: deltas and code diffs are against the run chosen (the first unless chosen). */
  private _baselineSelect(c: ICompareAnswer): HTMLElement {
    return select(
      'Baseline run',
      c.runs.map(r => [r.id, `${r.id} ${r.name ?? ''}`.trim()]),
      c.runs[c.baseline ?? 0].id,
      v => this._set({ baseline: v })
    );
  }

  /**
   * Each run's code against the baseline's, cell by cell, a section per run (three runs: two diffs, not the
   * last against the first alone): the same cells folded, changed ones as coloured diffs.
   */
  private async _code(c: ICompareAnswer): Promise<void> {
    const ids = c.runs.map(r => r.id);
    const base = c.baseline ?? 0;
    const region = el('div', { role: 'region', 'aria-label': 'Code diff' });
    region.appendChild(this._baselineSelect(c));
    region.appendChild(
      el(
        'p',
        {},
        `Each run against the baseline run ${ids[base]}, cell by cell; execution counts are not code (ignored).`
      )
    );
    this._body.appendChild(region);
    // an older server answers only the first run against the last
    const byRun = c.code_by_run ?? ids.map((_, i) => (i === ids.length - 1 ? c.code_cells : null));
    for (const [i, r] of c.runs.entries()) {
      const blocks = byRun[i];
      if (i === base || !blocks) {
        continue;
      }
      const title = `Run ${r.id}${r.name ? ` (${r.name})` : ''} against ${ids[base]}`;
      const section = el('section', { 'aria-label': title, class: 'nbexp-code-run' });
      section.appendChild(el('h3', {}, title));
      region.appendChild(section);
      await this._codeBlocks(section, blocks);
    }
    const modules = c.module_blocks ?? [];
    if (modules.length) {
      const first = ids[0];
      const last = ids[ids.length - 1];
      const title = `The notebook's modules: run ${last} against ${first}`;
      const section = el('section', { 'aria-label': title, class: 'nbexp-code-run' });
      section.appendChild(el('h3', {}, title));
      region.appendChild(section);
      for (const m of modules) {
        const label = `${m.module}: ${m.status}`;
        section.appendChild(el('h4', {}, label));
        if (m.lines.length) {
          section.appendChild(await diffBlock(m.lines, label));
        } else {
          const short = (h?: string | null) => (h ? h.slice(0, 12) : '-');
          section.appendChild(el('p', {}, `too large to keep: sha256 ${short(m.sha256_a)} -> ${short(m.sha256_b)}`));
        }
      }
    }
  }

  private async _codeBlocks(section: HTMLElement, blocks: ICodeBlock[]): Promise<void> {
    if (!blocks.some(b => b.status !== 'same')) {
      section.appendChild(el('p', { class: 'nbexp-same' }, 'Same code.'));
      return;
    }
    let cell = 0;
    for (const b of blocks) {
      if (b.status === 'same') {
        const n = b.count ?? 0;
        section.appendChild(
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
      section.appendChild(el('h4', {}, label));
      section.appendChild(await diffBlock(b.lines ?? [], label));
    }
  }
}
