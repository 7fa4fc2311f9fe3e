/** One run's details in the main area: params, metrics, data, system, outputs and artifacts, code. */
import { Widget } from '@lumino/widgets';

import { InputDialog } from '@jupyterlab/apputils';

import { requestAPI } from '../api';
import { el, fmt, table, when } from './format';
import { outputsSection } from './Outputs';

/** Where a metric came from, as the CLI's `nbexp show` says it (result objects keep their library's name). */
const SOURCES: Record<string, string> = { log: 'nbexp.log', namespace: 'variable', stdout: 'printed' };

function metricSource(source: string | undefined): string {
  return source ? (SOURCES[source] ?? source) : '';
}

export class RunView extends Widget {
  private _id: string;

  constructor(id: string) {
    super();
    this.id = `nbexp-run-${id}`;
    this.title.label = `Run ${id}`;
    this.title.closable = true;
    this.addClass('nbexp-run-view');
    this.node.textContent = 'Loading…';
    this._id = id;
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
    n.appendChild(el('h3', {}, 'Params'));
    n.appendChild(table('Params', ['param', 'value'], Object.entries(r.params)));
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
    n.appendChild(outputsSection(r.id));
    n.appendChild(el('h3', {}, 'Code'));
    n.appendChild(
      el(
        'pre',
        { class: 'nbexp-code' },
        r.lineage.map((c: any) => `# In[${c.execution_count ?? ' '}]\n${c.source}`).join('\n\n')
      )
    );
  }
}
