// A progress line for long CLI jobs (strata reindex), without dependencies. On a terminal
// the line is redrawn in place with `\r` (at most every 100 ms, padded so a shorter line
// leaves nothing of the longer one behind, and kept narrower than the terminal, since a
// wrapped line cannot be redrawn); anywhere else (CI, a log file, a pipe) it is written as
// one plain line every few seconds, so logs stay readable.

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressState {
  processed: number;
  total: number;
  /** Items per second. */
  rate: number;
}

export interface ProgressWriter {
  update(state: ProgressState): void;
  /** Draws the last state and ends the line; call once, before writing anything else. */
  done(): void;
}

export interface ProgressOptions {
  /** Word in front of the bar, e.g. "vectors". */
  label?: string;
  /** Time between plain lines when the stream is not a terminal; default 5 s. */
  intervalMs?: number;
  /** Overrides the stream's isTTY. */
  tty?: boolean;
  now?: () => number;
}

const REDRAW_MS = 100;
const DEFAULT_INTERVAL_MS = 5_000;

const count = (n: number) => Math.round(n).toLocaleString("en-US");

/** "0:42", "12:05", "1:02:03"; "--:--" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function percent(state: ProgressState): number {
  if (state.total <= 0) return state.processed > 0 ? 100 : 0;
  return Math.min(100, (100 * state.processed) / state.total);
}

function eta(state: ProgressState): string {
  const left = Math.max(0, state.total - state.processed);
  if (left === 0) return "0:00";
  return state.rate > 0 ? formatDuration(left / state.rate) : "--:--";
}

/** The figures after the bar: "45.2% 4,520/10,000 312/s ETA 0:17". */
export function formatFigures(state: ProgressState): string {
  const rate = state.rate >= 10 ? count(state.rate) : state.rate.toFixed(1);
  return `${percent(state).toFixed(1)}% ${count(state.processed)}/${count(state.total)} ${rate}/s ETA ${eta(state)}`;
}

/** A bar of `width` cells, e.g. "[██████░░░░]". */
export function formatBar(state: ProgressState, width: number): string {
  const filled = Math.round((percent(state) / 100) * width);
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}]`;
}

export function createProgressWriter(stream: ProgressStream, options: ProgressOptions = {}): ProgressWriter {
  const tty = options.tty ?? Boolean(stream.isTTY);
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const label = options.label ? `${options.label} ` : "";
  let last: ProgressState | null = null;
  let drawn: ProgressState | null = null;
  let drawnAt = -Infinity;
  let drawnLength = 0;
  let finished = false;

  function ttyLine(state: ProgressState): string {
    const figures = formatFigures(state);
    const columns = stream.columns && stream.columns > 0 ? stream.columns : 80;
    const room = columns - 1 - label.length - figures.length - 3;
    if (room < 10) return `${label}${figures}`.slice(0, columns - 1);
    return `${label}${formatBar(state, Math.min(30, room))} ${figures}`;
  }

  function draw(state: ProgressState): void {
    if (tty) {
      const line = ttyLine(state);
      stream.write(`\r${line}${" ".repeat(Math.max(0, drawnLength - line.length))}`);
      drawnLength = line.length;
    } else {
      stream.write(`${label}${formatFigures(state)}\n`);
    }
    drawn = state;
    drawnAt = now();
  }

  return {
    update(state) {
      if (finished) return;
      last = state;
      if (now() - drawnAt >= (tty ? REDRAW_MS : interval)) draw(state);
    },
    done() {
      if (finished) return;
      finished = true;
      if (last && last !== drawn) draw(last);
      if (tty && drawnLength > 0) stream.write("\n");
    },
  };
}
