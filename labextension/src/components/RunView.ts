/** One run's details in the main area: params grouped by where they came from (with a filter), metric
 * charts, data, system, outputs and artifacts, the run's cells highlighted, and "Compare with best". */
import { Widget } from '@lumino/widgets';

import { InputDialog } from '@jupyterlab/apputils';

import { requestAPI } from '../api';
import { IFigure } from '../tokens';
import { el, fmt, table, when } from './format';
import { codeBlock } from './highlight';
import { outputsSection } from './Outputs';
import { LinkedCharts } from './plot';

/** Where a metric came from, as the CLI's `nbexp show` says it (result objects keep their library's name). */
const SOURCES: Record<string, string> = { log: 'nbexp.log', namespace: 'variable', stdout: 'printed' };

function metricSource(source: string | undefined): string {
  return source ? (SOURCES[source] ?? source) : '';
}

/** The groups of a run's params, in the order shown. */
export const PARAM_GROUPS = ['Explicit', 'Assignments', 'Estimators', 'Optimizer', 'Config'] as const;

/**
 * Which group a param belongs to, from the source the ledger recorded (`explicit`, `assign`, `default`,
 * `config`, `estimator`, `torch`) and its key: a dotted key is an object's (an estimator's `clf.C`),
 * an optimizer's or LR scheduler's keys go under Optimizer.
 */
export function paramGroup(key: string, source: string): (typeof PARAM_GROUPS)[number] {
  if (source === 'explicit') {
    return 'Explicit';
  }
  if (source === 'torch' || /(^|\.)(optim|optimizer|lr_scheduler|scheduler)(\.|$)/i.test(key)) {
    return 'Optimizer';
  }
  if (source === 'config') {
    return 'Config';
  }
  return source === 'estimator' || key.includes('.') ? 'Estimators' : 'Assignments';
}

/** The best run of the sprint by a metric this run has (GET runs/ID/figures; analysis.compare.best_in_sprint):
 * id null, with why, when no other run has that metric. */
interface IBest {
  id: string | null;
  name?: string | null;
  metric: string;
  value?: number;
  why?: string;
}

export class RunView extends Widget {
  private _id: string;
  private _onCompare: ((ids: string[]) => void) | null;
  private _charts = new LinkedCharts();

  constructor(id: string, onCompare?: (ids: string[]) => void) {
    super();
    this.id = `nbexp-run-${id}`;
    this.title.label = `Run ${id}`; // until the run answers: then its name, the id in the caption
    this.title.caption = `Run ${id}`;
    this.title.closable = true;
    this.addClass('nbexp-run-view');
    this.node.textContent = 'Loading…';
    this._id = id;
    this._onCompare = onCompare ?? null;
    void this.load(id);
  }

  /** Rename, tag and annotate through PATCH /nbexp/api/runs/ID (XSRF sent by ServerConnection). */
  private _editButtons(r: any): HTMLElement {
    const bar = el('div', { class: 'nbexp-edit' });
    const busy = el('span', { class: 'nbexp-busy', role: 'status' });
    const edit = async (label: string, field: string, current: string): Promise<void> => {
      const answer = await InputDialog.getText({ title: `${label} run ${r.id}`, text: current });
      if (!answer.button.accept || answer.value === null) {
        return;
      }
      const value = answer.value.trim();
      const body = field === 'add_tags' ? { add_tags: value.split(/[,\s]+/).filter(Boolean) } : { [field]: value };
      try {
        await requestAPI(`runs/${r.id}`, {}, { method: 'PATCH', body: JSON.stringify(body) }, message => {
          busy.textContent = message ?? '';
        });
      } catch (e) {
        busy.textContent = `error: ${(e as Error).message}`;
        return;
      }
      await this.load(this._id);
    };
    const buttons: [string, string, string][] = [
      ['Rename', 'name', r.name ?? ''],
      ['Add tags', 'add_tags', ''],
      ['Edit note', 'note', r.note ?? '']
    ];
    for (const [label, field, current] of buttons) {
      const b = el('button', { class: 'jp-mod-styled', 'aria-label': `${label} run ${r.id}` }, label);
      b.addEventListener('click', () => void edit(label, field, current));
      bar.appendChild(b);
    }
    bar.appendChild(busy);
    return bar;
  }

  async load(id: string): Promise<void> {
    let r: any;
    try {
      r = await requestAPI<any>(`runs/${id}`);
    } catch (e) {
      this.node.textContent = `Could not load run ${id}: ${(e as Error).message}`;
      return;
    }
    this.title.label = r.name ?? `Run ${r.id}`;
    this.title.caption = `Run ${r.id}${r.name ? ` (${r.name})` : ''}`;
    const n = this.node;
    n.replaceChildren();
    n.appendChild(el('h2', {}, `${r.name ?? r.id} · ${r.status}`));
    n.appendChild(
      el(
        'p',
        {},
        `run ${r.id} · sprint ${r.sprint} · started ${when(r.start_time)}` +
          (r.error ? ` · ${r.error}` : '') +
          (r.note ? ` · note: ${r.note}` : '') +
          (r.tags.length ? ` · tags: ${r.tags.join(', ')}` : '')
      )
    );
    n.appendChild(this._editButtons(r));
    const figures = requestAPI<{ figures: Record<string, IFigure>; best: IBest | null }>(`runs/${id}/figures`).catch(
      () => null
    );
    const compareBar = el('div', { class: 'nbexp-edit' });
    n.appendChild(compareBar);
    n.appendChild(this._params(r.params, r.param_sources ?? {}));
    n.appendChild(el('h3', {}, 'Metrics'));
    n.appendChild(
      table(
        'Metric summaries',
        ['metric', 'last', 'min', 'max', 'steps', 'source'],
        Object.entries(r.metric_summaries as Record<string, any>).map(([k, s]) => [
          k,
          s.last,
          s.min,
          s.max,
          s.steps,
          metricSource(s.source)
        ])
      )
    );
    const charts = el('div', {
      class: 'nbexp-chart',
      'data-figure': 'grid',
      role: 'figure',
      'aria-label': 'Metric charts'
    });
    n.appendChild(charts);
    n.appendChild(el('h3', {}, 'Data'));
    if (r.data.length) {
      for (const d of r.data) {
        const cols = d.summary?.columns ?? [];
        n.appendChild(
          el(
            'p',
            {},
            `${d.name}: ${d.kind} ${JSON.stringify(d.shape)} · ${d.fingerprint.slice(0, 12)}` +
              (d.summary?.sampled ? ` · sampled ${d.summary.sampled.rows} of ${d.summary.sampled.of} rows` : '')
          )
        );
        n.appendChild(
          table(
            `Data ${d.name}`,
            ['column', 'dtype', 'missing', 'min', 'p50', 'max', 'note'],
            cols
              .slice(0, 50)
              .map((c: any) => [
                c.name,
                c.dtype,
                c.missing_rate,
                c.min,
                c.p50,
                c.max,
                c.imbalanced ? `imbalanced (minority ${fmt(c.minority_share)})` : ''
              ])
          )
        );
      }
    } else {
      n.appendChild(el('p', {}, 'Data: not recorded.'));
    }
    n.appendChild(el('h3', {}, 'System'));
    n.appendChild(
      el(
        'p',
        {},
        r.gpu_util_mean === null
          ? `GPU: not recorded · CPU ${fmt(r.cpu_mean)}% · RSS peak ${fmt(r.rss_peak_mb)} MB`
          : `GPU ${fmt(r.gpu_util_mean)}% mean, ${fmt(r.gpu_util_max)}% max · memory peak ${fmt(r.gpu_mem_peak_mb)} MB · ` +
              `${fmt(r.energy_wh)} Wh · CPU ${fmt(r.cpu_mean)}%`
      )
    );
    if (r.idle_hint) {
      n.appendChild(el('p', { class: 'nbexp-hint' }, `Hint: ${r.idle_hint}`));
    }
    const system = el('div', {
      class: 'nbexp-chart',
      'data-figure': 'system',
      role: 'figure',
      'aria-label': 'System timeline'
    });
    n.appendChild(system);
    n.appendChild(outputsSection(r.id));
    n.appendChild(el('h3', {}, 'Code'));
    const code = el('div', { role: 'region', 'aria-label': 'Run code' });
    n.appendChild(code);
    for (const c of r.lineage) {
      const label = `In [${c.execution_count ?? ' '}]`;
      code.appendChild(el('div', { class: 'nbexp-output-prompt' }, label));
      code.appendChild(await codeBlock(c.source, `Cell ${label}`));
    }
    const answer = await figures;
    if (answer) {
      this._compareButton(compareBar, r, answer.best);
      await this._charts.add(charts, answer.figures.grid);
      await this._charts.add(system, answer.figures.system);
    }
  }

  /** "Compare with best": this run against the best run of its sprint by a metric this run has (the sprint's
   * main metric when it has it); disabled, saying why, when no other run has that metric. */
  private _compareButton(bar: HTMLElement, r: any, best: IBest | null): void {
    const b = el('button', { class: 'jp-mod-styled', 'aria-label': 'Compare with best' }, 'Compare with best');
    if (!best) {
      b.disabled = true;
      b.title = 'no metric was recorded in this sprint';
    } else if (best.id === null) {
      b.disabled = true;
      b.title = best.why ?? `no other run of the sprint recorded ${best.metric}`;
    } else if (best.id === r.id) {
      b.disabled = true;
      b.title = `this is the best run of the sprint by ${best.metric} (${fmt(best.value)})`;
    } else {
      b.title = `against ${best.name ?? best.id}, the best run of the sprint by ${best.metric} (${fmt(best.value)})`;
      const other = best.id;
      b.addEventListener('click', () => this._onCompare?.([other, r.id]));
    }
    bar.appendChild(b);
    if (best) {
      bar.appendChild(el('span', { class: 'nbexp-note' }, b.title));
    }
  }

  /**
   * The params in one table, grouped by where they came from (PARAM_GROUPS), the ones set away from
   * their defaults first, with a filter box over keys and values.
   */
  private _params(params: Record<string, unknown>, sources: Record<string, string>): HTMLElement {
    const section = el('section', { 'aria-label': 'Params section' });
    const keys = Object.keys(params);
    section.appendChild(el('h3', {}, `Params (${keys.length})`));
    const filter = el('input', {
      type: 'search',
      class: 'jp-mod-styled nbexp-filter',
      placeholder: 'Filter params (key or value)',
      'aria-label': 'Filter params'
    });
    const count = el('span', { class: 'nbexp-hint', role: 'status', 'aria-label': 'Params shown' });
    section.append(filter, count);
    const t = el('table', { class: 'nbexp-table', 'aria-label': 'Params' });
    const head = t.createTHead().insertRow();
    for (const h of ['param', 'value', 'from']) {
      head.appendChild(el('th', { scope: 'col' }, h));
    }
    const groups = new Map<string, string[]>(PARAM_GROUPS.map(g => [g, []]));
    for (const k of keys) {
      groups.get(paramGroup(k, sources[k] ?? ''))!.push(k);
    }
    const bodies: [HTMLTableSectionElement, HTMLTableRowElement[]][] = [];
    for (const [group, members] of groups) {
      if (!members.length) {
        continue;
      }
      members.sort((a, b) => Number(sources[a] === 'default') - Number(sources[b] === 'default') || a.localeCompare(b));
      const body = t.createTBody();
      body.setAttribute('aria-label', `${group} params`);
      const title = body.insertRow();
      title.className = 'nbexp-group';
      const defaults = members.filter(k => sources[k] === 'default').length;
      title.appendChild(
        el(
          'th',
          { colspan: '3', scope: 'rowgroup' },
          `${group} (${members.length}${defaults ? `, ${defaults} at their defaults` : ''})`
        )
      );
      const rows = members.map(k => {
        const tr = body.insertRow();
        tr.dataset.search = `${k} ${fmt(params[k])}`.toLowerCase();
        if (sources[k] === 'default') {
          tr.className = 'nbexp-default';
        }
        for (const v of [k, fmt(params[k]), sources[k] === 'default' ? 'default' : (sources[k] ?? '')]) {
          tr.insertCell().textContent = v;
        }
        return tr;
      });
      bodies.push([body, rows]);
    }
    const apply = () => {
      const q = filter.value.trim().toLowerCase();
      let shown = 0;
      for (const [body, rows] of bodies) {
        let any = false;
        for (const tr of rows) {
          const hit = !q || tr.dataset.search!.includes(q);
          tr.hidden = !hit;
          any = any || hit;
          shown += hit ? 1 : 0;
        }
        body.hidden = !any;
      }
      count.textContent = q ? ` ${shown} of ${keys.length} params` : '';
    };
    filter.addEventListener('input', apply);
    section.appendChild(keys.length ? t : el('p', {}, 'No params recorded.'));
    return section;
  }
}
