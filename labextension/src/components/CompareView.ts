/** The main-area comparison: param diff, metrics, curves, parallel coordinates, data, system, code. */
import { Widget } from '@lumino/widgets';

import { requestAPI } from '../api';
import { ICompare } from '../tokens';
import { el, fmt, table } from './format';
import { compareOutputs } from './Outputs';
import { drawFigure } from './plot';

const TITLE_LENGTH = 60;

/**
 * A comparison's tab title from what differs: "C=0.1 vs C=10". The param with the most distinct values
 * comes first, alone when it tells every run apart, else with a second one; with no param differing,
 * the runs' names, else their ids.
 */
export function compareTitle(c: ICompare): string {
  const n = c.runs.length;
  const distinct = (values: unknown[]) => new Set(values.map(v => JSON.stringify(v))).size;
  const ranked = Object.entries(c.param_diff)
    .sort((a, b) => distinct(b[1]) - distinct(a[1]) || a[0].localeCompare(b[0]))
    .map(([k]) => k);
  const keys = ranked.length && distinct(c.param_diff[ranked[0]]) === n ? ranked.slice(0, 1) : ranked.slice(0, 2);
  const value = (v: unknown) => (v === null ? 'none' : fmt(v));
  const labels = c.runs.map((r, i) =>
    keys.length ? keys.map(k => `${k}=${value(c.param_diff[k][i])}`).join(', ') : (r.name ?? r.id)
  );
  const title = labels.join(' vs ');
  return title.length <= TITLE_LENGTH ? title : `${title.slice(0, TITLE_LENGTH - 1)}…`;
}

const TABS: [string, string][] = [
  ['overview', 'Params & metrics'],
  ['curves', 'Metric curves'],
  ['parallel', 'Parallel coordinates'],
  ['data', 'Data'],
  ['system', 'System'],
  ['code', 'Code diff'],
  ['outputs', 'Outputs']
];

export class CompareView extends Widget {
  private _ids: string[];
  private _data: ICompare | null = null;
  private _tabs: HTMLElement;
  private _body: HTMLElement;
  private _current = 'overview';

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
    this.node.append(this._tabs, this._body);
    void this.load();
  }

  async load(): Promise<void> {
    try {
      this._data = await requestAPI<ICompare>('compare', { runs: this._ids.join(',') });
      this.title.label = compareTitle(this._data);
      this.title.caption = `Compare runs ${this._ids.join(', ')}`;
      await this.showTab(this._current);
    } catch (e) {
      this._body.textContent = `Could not compare: ${(e as Error).message}`;
    }
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
    const ids = c.runs.map(r => r.id);
    const figure = async (name: string): Promise<void> => {
      const box = el('div', { class: 'nbexp-chart', 'data-figure': name });
      this._body.appendChild(box);
      await drawFigure(box, c.figures[name]);
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
      this._body.appendChild(el('h3', {}, `Metrics (last value; ★ best; Δ against the baseline ${ids[0]})`));
      const metrics = Object.entries(c.metrics);
      const deltas = ids.slice(1).map(id => (ids.length === 2 ? `Δ vs ${ids[0]}` : `Δ ${id} vs ${ids[0]}`));
      this._body.appendChild(
        metrics.length
          ? table(
              'Metrics',
              ['metric', ...ids, ...deltas],
              metrics.map(([k, v]) => [
                k,
                ...v.map((s, i) => (c.best?.[k] === i ? `★ ${fmt(s?.last ?? null)}` : s ? s.last : null)),
                ...ids.slice(1).map((_, i) => c.baseline_delta?.[k]?.[i + 1] ?? null)
              ])
            )
          : el('p', {}, 'No metrics recorded.')
      );
      await figure('curves');
    } else if (key === 'curves' || key === 'parallel' || key === 'system') {
      await figure(key);
      if (key === 'parallel' && c.figures.search) {
        await figure('search'); // a hyperparameter search's candidates, next to the runs' params
      }
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
      await figure('drift');
      await figure('classes');
    } else if (key === 'code') {
      this._body.appendChild(
        el(
          'pre',
          { class: 'nbexp-code', 'aria-label': 'Code diff' },
          c.code_diff.length ? c.code_diff.join('\n') : 'Same code.'
        )
      );
    } else if (key === 'outputs') {
      this._body.appendChild(compareOutputs(c.runs)); // figures side by side per cell (components/Outputs.ts)
    }
  }
}
