/** plotly.js, loaded on first use (it is a large chunk), drawn in the page's theme colours. */
import { IFigure } from '../tokens';

let plotly: Promise<any> | null = null;

function loadPlotly(): Promise<any> {
  if (!plotly) {
    plotly = import('plotly.js-dist-min').then(m => (m as any).default ?? m);
  }
  return plotly;
}

function themed(layout: any): any {
  const css = getComputedStyle(document.body);
  const fg = css.getPropertyValue('--jp-ui-font-color1').trim() || '#222';
  const grid = css.getPropertyValue('--jp-border-color2').trim() || '#ddd';
  return {
    ...layout,
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { ...(layout.font ?? {}), color: fg },
    xaxis: { gridcolor: grid, ...(layout.xaxis ?? {}) },
    yaxis: { gridcolor: grid, ...(layout.yaxis ?? {}) },
    autosize: true
  };
}

export async function drawFigure(node: HTMLElement, figure: IFigure): Promise<void> {
  const Plotly = await loadPlotly();
  await Plotly.newPlot(node, figure.data, themed(figure.layout), {
    responsive: true,
    displaylogo: false
  });
}
