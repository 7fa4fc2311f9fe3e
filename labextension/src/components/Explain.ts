/**
 * The compare view's Explain action: why the last run scores differently from the first, as `nbexp explain`
 * ranks it (data, code, params, environment, seed, system), with the waterfall of a stored ablation
 * (`nbexp explain --ablate`: the server itself replays nothing).
 */
import { requestAPI } from '../api';
import { el, table } from './format';
import { drawFigure } from './plot';
import { IFigure } from '../tokens';

export interface IFactor {
  key: string;
  kind: string;
  title: string;
  sentence: string;
  isolable: boolean;
  not_isolable: string | null;
  effect: number | null;
  noise?: number;
}

export interface IImportance {
  metric: string;
  runs: number;
  params: { param: string; importance: number; spearman: number | null }[];
  note: string | null;
}

/** What matters across the sprint of run `run` for `metric`: the params ranked by random-forest importance. */
async function whatMatters(run: string, metric: string): Promise<HTMLElement> {
  const box = el('section', { 'aria-label': 'What matters across the sprint' });
  box.appendChild(el('h4', {}, `What matters for ${metric} across the sprint`));
  try {
    const imp = await requestAPI<IImportance>('importance', { run, metric });
    if (!imp.params.length) {
      box.appendChild(el('p', {}, imp.note ?? 'No param varies.'));
      return box;
    }
    const rows = imp.params
      .slice(0, 8)
      .map(p => [
        p.param,
        p.importance.toFixed(2),
        p.spearman === null ? 'n/a' : `${p.spearman >= 0 ? '+' : ''}${p.spearman.toFixed(2)}`
      ]);
    box.appendChild(table('Param importance', ['param', 'importance (random forest)', 'Spearman'], rows));
    box.appendChild(el('p', {}, `over ${imp.runs} runs of the sprint`));
  } catch (e) {
    box.appendChild(el('p', {}, `Importance not available: ${(e as Error).message}`));
  }
  return box;
}

export interface IExplanation {
  a: string;
  b: string;
  metric: string;
  summary: string;
  factors: IFactor[];
  ablation: { id: string; noise: number; figure: IFigure | null } | null;
}

/** One factor as one line: "[data] the data changed ... (ablation -0.019, noise ±0)". */
export function factorLine(f: IFactor): string {
  if (f.effect !== null && f.effect !== undefined) {
    const sign = f.effect >= 0 ? '+' : '';
    return `[${f.kind}] ${f.sentence} (ablation ${sign}${f.effect.toPrecision(3)}, noise ±${(f.noise ?? 0).toPrecision(2)})`;
  }
  return `[${f.kind}] ${f.sentence}`;
}

/** The Explain button and, once clicked, the explanation of runs `ids[0]` (reference) and the last one. */
export function explainAction(ids: string[]): HTMLElement {
  const a = ids[0];
  const b = ids[ids.length - 1];
  const box = el('div', { class: 'nbexp-explain' });
  const button = el(
    'button',
    { class: 'jp-mod-styled nbexp-explain-button', title: `Why run ${b} scores differently from run ${a}` },
    'Explain'
  );
  const result = el('div', { class: 'nbexp-explain-result', 'aria-live': 'polite', 'aria-label': 'Explanation' });
  button.addEventListener('click', () => void show());
  box.append(button, result);

  async function show(): Promise<void> {
    result.replaceChildren(el('p', {}, 'Explaining…'));
    try {
      const ex = await requestAPI<IExplanation>('explain', { runs: `${a},${b}` });
      const list = el('ol', { 'aria-label': 'Factors, first cause first' });
      list.append(...ex.factors.map(f => el('li', { 'data-kind': f.kind }, factorLine(f))));
      result.replaceChildren(
        el('p', { class: 'nbexp-explain-summary' }, ex.summary),
        ex.factors.length ? list : el('p', {}, 'Nothing recorded differs.')
      );
      if (ex.ablation?.figure) {
        const chart = el('div', { class: 'nbexp-chart', 'data-figure': 'waterfall' });
        result.appendChild(chart);
        await drawFigure(chart, ex.ablation.figure);
      } else if (ex.factors.some(f => f.isolable)) {
        result.appendChild(
          el('p', {}, `Measure each factor: nbexp explain ${b} --vs ${a} --ablate (replays run ${b}).`)
        );
      }
      result.appendChild(await whatMatters(b, ex.metric));
    } catch (e) {
      result.replaceChildren(el('p', {}, `Could not explain: ${(e as Error).message}`));
    }
  }
  return box;
}
