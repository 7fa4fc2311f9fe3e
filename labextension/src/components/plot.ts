/** plotly.js, loaded on first use (it is a large chunk), drawn in the page's theme colours. */
import { IFigure } from '../tokens';

let plotly: Promise<any> | null = null;

function loadPlotly(): Promise<any> {
  if (!plotly) {
    plotly = import('plotly.js-dist-min').then(m => (m as any).default ?? m);
  }
  return plotly;
}

/** Every x and y axis of a layout (a grid of small multiples has xaxis2, yaxis3, ...). */
function axisKeys(layout: any): string[] {
  return Object.keys(layout).filter(k => /^[xy]axis\d*$/.test(k));
}

function themed(layout: any): any {
  const css = getComputedStyle(document.body);
  const fg = css.getPropertyValue('--jp-ui-font-color1').trim() || '#222';
  const grid = css.getPropertyValue('--jp-border-color2').trim() || '#ddd';
  const axes: Record<string, any> = {};
  for (const k of ['xaxis', 'yaxis', ...axisKeys(layout)]) {
    axes[k] = { gridcolor: grid, ...(layout[k] ?? {}) };
  }
  return {
    ...layout,
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { ...(layout.font ?? {}), color: fg },
    ...axes,
    autosize: true
  };
}

export async function drawFigure(node: HTMLElement, figure: IFigure): Promise<void> {
  const Plotly = await loadPlotly();
  if (figure.layout?.height) {
    node.style.minHeight = `${figure.layout.height}px`; // the figure's own height: an empty state stays short
  }
  await Plotly.newPlot(node, figure.data, themed(figure.layout), {
    responsive: true,
    displaylogo: false
  });
}

/** Release the plotly charts under `root` (their data and window resize listeners): a panel replaced or closed. */
export function purgeCharts(root: HTMLElement): void {
  const nodes = Array.from(root.querySelectorAll('.js-plotly-plot'));
  if (plotly && nodes.length) {
    void plotly.then(P =>
      nodes.forEach(n => {
        try {
          P.purge(n);
        } catch {
          // a chart still being drawn when its panel went: nothing of it stays in use
        }
      })
    );
  }
}

/**
 * Runs hidden in one chart are hidden in all: every chart drawn through `add` shares one set of hidden
 * runs (the traces' legend groups are run ids); a click on a run in any legend hides or shows that run
 * in every chart, and a chart drawn later starts with the same runs hidden.
 */
export class LinkedCharts {
  private _hidden = new Set<string>();
  private _nodes: HTMLElement[] = [];

  get hidden(): ReadonlySet<string> {
    return this._hidden;
  }

  async add(node: HTMLElement, figure: IFigure): Promise<void> {
    await drawFigure(node, figure);
    this._nodes = this._nodes.filter(n => n.isConnected);
    this._nodes.push(node);
    await this._apply(node);
    (node as any).on?.('plotly_legendclick', (event: any) => {
      const group = event?.data?.[event.curveNumber]?.legendgroup;
      if (!group) {
        return true; // not a run: plotly's own toggle
      }
      void this.toggle(group);
      return false;
    });
  }

  async toggle(run: string): Promise<void> {
    if (this._hidden.has(run)) {
      this._hidden.delete(run);
    } else {
      this._hidden.add(run);
    }
    this._nodes = this._nodes.filter(n => n.isConnected);
    await Promise.all(this._nodes.map(n => this._apply(n)));
  }

  private async _apply(node: HTMLElement): Promise<void> {
    const data: any[] = (node as any).data ?? [];
    const indices = data.map((_, i) => i).filter(i => data[i].legendgroup);
    // parallel coordinates: one trace, a line per run (meta.runs), coloured through a flat band per run
    const lines = data.map((_, i) => i).filter(i => data[i].type === 'parcoords' && data[i].meta?.runs);
    if (!indices.length && !lines.length) {
      return;
    }
    const Plotly = await loadPlotly();
    if (indices.length) {
      const visible = indices.map(i => (this._hidden.has(data[i].legendgroup) ? 'legendonly' : true));
      await Plotly.restyle(node, { visible }, indices);
    }
    for (const i of lines) {
      await Plotly.restyle(node, { 'line.colorscale': [this._hideLines(data[i])] }, [i]);
    }
  }

  /** A parcoords trace's colour scale with the hidden runs' bands transparent (the first scale drawn is kept). */
  private _hideLines(trace: any): any[] {
    trace.meta.scale ??= trace.line.colorscale;
    const runs: string[] = trace.meta.runs;
    const scale: [number, string][] = trace.meta.scale;
    // band i (two stops) is run i's: see nbexp/figures.py run_line
    return scale.map(([at, colour], k) => [at, this._hidden.has(runs[Math.floor(k / 2)]) ? 'rgba(0,0,0,0)' : colour]);
  }
}
