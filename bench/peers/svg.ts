// A small dependency-free SVG chart writer for bench/peers.ts: grouped bar charts and line
// charts with a legend, values printed on the bars, optional log scale.

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fmt(v: number): string {
  if (v >= 100) return Math.round(v).toLocaleString("en-US");
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export interface Series {
  name: string;
  values: (number | null)[];
}

interface Frame {
  title: string;
  unit: string;
  log?: boolean;
}

function scale(values: number[], log: boolean, height: number): { y: (v: number) => number; ticks: number[] } {
  const max = Math.max(...values, 1e-9);
  if (log) {
    const lo = Math.floor(Math.log10(Math.max(Math.min(...values.filter((v) => v > 0)), 1e-3)));
    const hi = Math.ceil(Math.log10(max));
    const ticks: number[] = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
    return { y: (v) => height - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / Math.max(hi - lo, 1)) * height, ticks };
  }
  const step = 10 ** Math.floor(Math.log10(max));
  const top = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let t = 0; t <= top + 1e-9; t += top / 5) ticks.push(t);
  return { y: (v) => height - (v / top) * height, ticks };
}

function axes(f: Frame, s: { y: (v: number) => number; ticks: number[] }, x0: number, y0: number, w: number, h: number): string {
  let out = `<text x="${x0 + w / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(f.title)}</text>`;
  out += `<text x="14" y="${y0 + h / 2}" transform="rotate(-90 14 ${y0 + h / 2})" text-anchor="middle" font-size="12">${esc(f.unit)}${f.log ? " (log)" : ""}</text>`;
  for (const t of s.ticks) {
    const y = y0 + s.y(t);
    out += `<line x1="${x0}" x2="${x0 + w}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${x0 - 6}" y="${y + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`;
  }
  out += `<line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y0 + h}" stroke="#333"/><line x1="${x0}" x2="${x0 + w}" y1="${y0 + h}" y2="${y0 + h}" stroke="#333"/>`;
  return out;
}

function legend(series: Series[], x: number, y: number): string {
  return series
    .map((s, i) => `<rect x="${x}" y="${y + i * 18}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 18}" y="${y + i * 18 + 10}" font-size="12">${esc(s.name)}</text>`)
    .join("");
}

/** Groups along x (categories), one bar per series in each group. */
export function barChart(f: Frame & { categories: string[]; series: Series[] }): string {
  const W = 900, x0 = 70, y0 = 40, h = 300, legendW = 190;
  const w = W - x0 - legendW - 20;
  const all = f.series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const s = scale(all, !!f.log, h);
  const gw = w / f.categories.length;
  const bw = Math.min(40, (gw * 0.8) / f.series.length);
  let out = axes(f, s, x0, y0, w, h);
  f.categories.forEach((c, ci) => {
    const gx = x0 + ci * gw + (gw - bw * f.series.length) / 2;
    f.series.forEach((se, si) => {
      const v = se.values[ci];
      const x = gx + si * bw;
      if (v === null || v === undefined || !Number.isFinite(v)) {
        out += `<text x="${x + bw / 2}" y="${y0 + h - 4}" text-anchor="middle" font-size="9" fill="#999">n/a</text>`;
        return;
      }
      const y = y0 + s.y(v);
      out += `<rect x="${x}" y="${y}" width="${bw - 2}" height="${y0 + h - y}" fill="${COLORS[si % COLORS.length]}"><title>${esc(se.name)} ${esc(c)}: ${fmt(v)}</title></rect>`;
      out += `<text x="${x + bw / 2 - 1}" y="${y - 3}" text-anchor="middle" font-size="9">${fmt(v)}</text>`;
    });
    out += `<text x="${x0 + ci * gw + gw / 2}" y="${y0 + h + 16}" text-anchor="middle" font-size="11">${esc(c)}</text>`;
  });
  out += legend(f.series, W - legendW, y0);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y0 + h + 40}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${out}</svg>\n`;
}

/** One line per series over numeric x (log x when xLog). */
export function lineChart(f: Frame & { xs: number[]; xLabel: string; xLog?: boolean; series: Series[] }): string {
  const W = 900, x0 = 70, y0 = 40, h = 300, legendW = 190;
  const w = W - x0 - legendW - 20;
  const all = f.series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const s = scale(all, !!f.log, h);
  const lx = (x: number) => (f.xLog ? Math.log10(x) : x);
  const xmin = lx(Math.min(...f.xs)), xmax = lx(Math.max(...f.xs));
  const px = (x: number) => x0 + 20 + ((lx(x) - xmin) / Math.max(xmax - xmin, 1e-9)) * (w - 40);
  let out = axes(f, s, x0, y0, w, h);
  for (const x of f.xs) out += `<text x="${px(x)}" y="${y0 + h + 16}" text-anchor="middle" font-size="11">${x.toLocaleString("en-US")}</text>`;
  out += `<text x="${x0 + w / 2}" y="${y0 + h + 34}" text-anchor="middle" font-size="12">${esc(f.xLabel)}</text>`;
  f.series.forEach((se, si) => {
    const pts = f.xs.map((x, i) => [x, se.values[i]] as const).filter((p): p is readonly [number, number] => p[1] !== null && p[1] !== undefined && Number.isFinite(p[1]));
    const color = COLORS[si % COLORS.length];
    out += `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, v]) => `${px(x)},${y0 + s.y(v)}`).join(" ")}"/>`;
    for (const [x, v] of pts) out += `<circle cx="${px(x)}" cy="${y0 + s.y(v)}" r="3" fill="${color}"><title>${esc(se.name)} ${x}: ${fmt(v)}</title></circle>`;
  });
  out += legend(f.series, W - legendW, y0);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y0 + h + 44}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${out}</svg>\n`;
}
