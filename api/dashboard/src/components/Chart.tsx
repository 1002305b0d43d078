// A lightweight-charts chart: candles or lines, markers on the first series, and horizontal
// price lines (an open deal's levels). Redrawn whenever its data change.
import { useEffect, useRef } from "react";
import {
  AreaSeries, CandlestickSeries, ColorType, createChart, createSeriesMarkers, LineSeries,
  LineStyle, type ISeriesApi, type SeriesMarker, type SeriesType, type Time, type UTCTimestamp,
} from "lightweight-charts";

export interface Candle { time: number; open: number; high: number; low: number; close: number }
export interface Point { time: number; value: number }
export interface Line { name: string; color: string; points: Point[]; area?: boolean }
export interface Marker { time: number; kind: "entry" | "safety" | "exit"; text: string }
export interface PriceLine { price: number; color: string; title: string }

interface Props {
  label: string;
  candles?: Candle[];
  lines?: Line[];
  markers?: Marker[];
  priceLines?: PriceLine[];
  height?: number;
  testId?: string;
  /** Labels for the time axis when it is not time (e.g. a ladder's levels). */
  timeLabel?: (time: number) => string;
}

const MARKER_STYLE = {
  entry: { position: "belowBar", color: "#1565c0", shape: "arrowUp" },
  safety: { position: "belowBar", color: "#8e24aa", shape: "circle" },
  exit: { position: "aboveBar", color: "#c62828", shape: "arrowDown" },
} as const;

/** Ascending, one point per time (lightweight-charts refuses anything else). */
function ordered<T extends { time: number }>(items: T[]): T[] {
  const byTime = new Map<number, T>();
  for (const item of items) byTime.set(item.time, item);
  return [...byTime.values()].sort((a, b) => a.time - b.time);
}

const asTime = (t: number) => t as UTCTimestamp;

function addData(chart: ReturnType<typeof createChart>, props: Props): ISeriesApi<SeriesType> | null {
  let first: ISeriesApi<SeriesType> | null = null;
  if (props.candles?.length) {
    const s = chart.addSeries(CandlestickSeries, { upColor: "#2e7d32", downColor: "#c62828",
      wickUpColor: "#2e7d32", wickDownColor: "#c62828", borderVisible: false });
    s.setData(ordered(props.candles).map((c) => ({ ...c, time: asTime(c.time) })));
    first = s;
  }
  for (const line of props.lines ?? []) {
    const s = line.area
      ? chart.addSeries(AreaSeries, { lineColor: line.color, topColor: `${line.color}55`,
          bottomColor: `${line.color}05`, title: line.name })
      : chart.addSeries(LineSeries, { color: line.color, lineWidth: 2, title: line.name });
    s.setData(ordered(line.points).map((p) => ({ ...p, time: asTime(p.time) })));
    first ??= s;
  }
  return first;
}

export function Chart(props: Props) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const chart = createChart(box.current, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#ffffff" }, textColor: "#222" },
      grid: { vertLines: { color: "#eee" }, horzLines: { color: "#eee" } },
      timeScale: { timeVisible: true, secondsVisible: false,
        ...(props.timeLabel ? { tickMarkFormatter: (t: Time) => props.timeLabel!(t as number) } : {}) },
      ...(props.timeLabel ? { localization: { timeFormatter: (t: Time) => props.timeLabel!(t as number) } } : {}),
    });
    const first = addData(chart, props);
    if (first && props.markers?.length) {
      // Several fills may share a time: markers are sorted, never merged.
      const markers: SeriesMarker<Time>[] = [...props.markers].sort((a, b) => a.time - b.time).map((m) => ({
        time: asTime(m.time), text: m.text, ...MARKER_STYLE[m.kind] }));
      createSeriesMarkers(first, markers);
    }
    for (const line of props.priceLines ?? []) {
      first?.createPriceLine({ price: line.price, color: line.color, title: line.title,
        lineWidth: 1, lineStyle: LineStyle.Dashed, axisLabelVisible: true });
    }
    chart.timeScale().fitContent();
    // The attribution lightweight-charts' licence asks for is a logo link: give it a name.
    box.current.querySelectorAll("a").forEach((a) => a.setAttribute("aria-label", "Charts by TradingView"));
    return () => chart.remove();
  }, [JSON.stringify(props)]);
  return (
    <figure className="chart" role="img" aria-label={props.label} data-testid={props.testId}>
      <div ref={box} style={{ height: props.height ?? 320 }} />
    </figure>
  );
}
