// What /health says, read for the health view: the overall light with its reasons in words,
// the parts' lights, each background task (this process's and, where /health lists them,
// other processes'), and this process. /health is the server's page, not the GraphQL API,
// and grows new parts and keys: anything unknown is skipped, never fatal.

export type Light = "green" | "amber" | "red" | "unknown";
type Obj = Record<string, unknown>;

export interface TaskError { kind: string | null; code: string | null; since: string | null; failures: number | null }
export interface Task {
  name: string;
  process: string | null; // null: this process (its own list)
  pid: string | null;
  here: boolean; // a row of the deployment's list that is this process's
  reportedAt: string | null;
  standby: boolean; // another process of the deployment runs the task now
  light: Light;
  rounds: number | null;
  lastOkAt: string | null;
  error: TaskError | null;
}
export interface ProcessInfo {
  role: string; pid: string | null; niceness: string; setting: string | null;
  name: string | null; // its name in the deployment's list, where /health says it
}
export interface HealthView {
  overall: Light;
  reasons: string[];
  lights: [string, Light, string][];
  tasks: Task[];
  process: ProcessInfo | null;
}

const RANK: Record<Light, number> = { unknown: 0, green: 1, amber: 2, red: 3 };
const LABELS: Record<string, string> = { event_store: "event store", engine_loop: "engine loop" };

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): string | null => (typeof v === "string" || typeof v === "number" ? String(v) : null);

export function light(status: unknown): Light {
  return status === "green" || status === "amber" || status === "red" ? status : "unknown";
}

export function worst(lights: Light[]): Light {
  return lights.reduce<Light>((a, b) => (RANK[b] > RANK[a] ? b : a), "unknown");
}

function feedLight(loop: Obj | undefined): Light {
  const market = loop?.market;
  const parts = (Array.isArray(market) ? market : market ? [market] : []).filter(isObj);
  if (!parts.length) return loop?.running ? "green" : "amber"; // the replayed market
  return parts.some((p) => p.last_error) ? "amber" : "green";
}

function partLights(h: Obj): [string, Light, string][] {
  const part = (name: string) => (isObj(h[name]) ? (h[name] as Obj) : undefined);
  const status = (name: string) => light(part(name)?.status);
  return [
    ["event store", status("event_store"), `head ${text(part("event_store")?.head) ?? "?"}`],
    ["projections", status("projections"), `lag ${JSON.stringify(part("projections")?.lag ?? {})}`],
    ["engine loop", status("engine_loop"), `steps ${text(part("engine_loop")?.steps) ?? "?"}`],
    ["feed", feedLight(part("engine_loop")), "market data"],
  ];
}

/** A task's report: a status and its rounds or last success (the shape of task_health.py). */
function isTask(v: unknown): v is Obj {
  return isObj(v) && typeof v.status === "string" && ("rounds" in v || "last_ok_at" in v);
}

function taskOf(name: string, v: Obj): Task {
  const e = isObj(v.error) ? v.error : null;
  const count = (x: unknown) => (typeof x === "number" ? x : null);
  return {
    name, process: text(v.process), pid: text(v.pid), here: false, reportedAt: text(v.reported_at),
    standby: v.standby === true, light: light(v.status), rounds: count(v.rounds), lastOkAt: text(v.last_ok_at),
    error: e && { kind: text(e.kind), code: text(e.code), since: text(e.since), failures: count(e.failures) },
  };
}

/** Whether a row of the deployment's list is this process's: by its name where /health
 *  says it, else by pid and role, and only when one row of the task matches (processes in
 *  containers may share a pid and role: then no row is taken for this one). */
function ownRows(rows: Obj[], own: ProcessInfo | null): Set<Obj> {
  if (!own) return new Set();
  const mine = (r: Obj) => (own.name ? text(r.process) === own.name
    : own.pid !== null && text(r.pid) === own.pid && text(r.role) === own.role);
  const found = rows.filter(mine);
  const times = new Map<unknown, number>();
  for (const r of found) times.set(r.task, (times.get(r.task) ?? 0) + 1);
  return new Set(found.filter((r) => times.get(r.task) === 1));
}

/** This process's tasks (``background.tasks``) and, where /health lists them, every live
 *  process's (``background.deployment.tasks``, this one's among them: shown once, there). */
function backgroundTasks(bg: unknown, own: ProcessInfo | null): Task[] {
  if (!isObj(bg)) return [];
  const mine = isObj(bg.tasks) ? Object.entries(bg.tasks).filter(([, v]) => isTask(v)).map(([k, v]) => taskOf(k, v as Obj)) : [];
  const rows = (isObj(bg.deployment) && Array.isArray(bg.deployment.tasks) ? bg.deployment.tasks : []).filter(isTask);
  const here = ownRows(rows, own);
  const deployment = rows.map((v) => ({ ...taskOf(text(v.task) ?? text(v.name) ?? "?", v), here: here.has(v) }));
  const listed = new Set(deployment.filter((t) => t.here).map((t) => t.name));
  return [...mine.filter((t) => !listed.has(t.name)), ...deployment];
}

function processInfo(p: unknown): ProcessInfo | null {
  if (!isObj(p)) return null;
  return { role: text(p.role) ?? "?", pid: text(p.pid), niceness: text(p.niceness) ?? "?",
           setting: text(p.niceness_setting), name: text(p.name) };
}

export function when(iso: string | null): string {
  if (!iso) return "—";
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : `${t.toISOString().replace("T", " ").slice(0, 19)} UTC`;
}

/** How long ago ``iso`` was, at ``now`` (ms since the epoch): "12 s ago", "3 min ago". */
export function ago(iso: string | null, now: number): string {
  if (!iso) return "never";
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return iso;
  const s = Math.round((now - then) / 1000);
  const size = Math.abs(s);
  const [n, unit] = size < 60 ? [size, "s"] : size < 3600 ? [Math.floor(size / 60), "min"]
    : size < 86400 ? [Math.floor(size / 3600), "h"] : [Math.floor(size / 86400), "d"];
  if (size < 2) return "just now";
  return s >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

export const taskLabel = (t: Task) => (t.process && !t.here ? `${t.name} on ${t.process}` : t.name);
export const errorLabel = (e: TaskError) => e.code ?? e.kind ?? "an error";

function taskReason(t: Task): string {
  const e = t.error;
  if (!e) return `background task ${taskLabel(t)} is ${t.light}`;
  const rounds = e.failures != null ? `, ${e.failures} round${e.failures === 1 ? "" : "s"} in a row` : "";
  const since = e.since ? ` since ${when(e.since)}` : "";
  return `background task ${taskLabel(t)} is failing with ${errorLabel(e)}${since}${rounds}`;
}

/** Why ``exchanges`` is not green: each account that is not ok where /health lists them (an
 *  administrator's answer), else how many are in which state (anyone else's: counted only). */
function exchangeReasons(part: Obj): string[] {
  if (isObj(part.accounts)) {
    return Object.entries(part.accounts).filter(([, a]) => isObj(a) && a.status !== "ok").map(([id, a]) => {
      const v = a as Obj;
      const why = text(v.error) ?? (isObj(v.drift) ? `${Object.keys(v.drift).join(", ")} differ` : null);
      return `exchange account ${id} is ${text(v.status) ?? "?"}${why ? ` (${why})` : ""}`;
    });
  }
  const counts = isObj(part.accounts_by_status) ? Object.entries(part.accounts_by_status) : [];
  const shown = counts.filter(([status]) => status !== "ok").map(([status, n]) => `${text(n) ?? "?"} ${status}`);
  return shown.length ? [`exchange accounts: ${shown.join(", ")}`] : [];
}

function reasons(h: Obj, tasks: Task[]): string[] {
  const said = tasks.filter((t) => t.light === "amber" || t.light === "red").map(taskReason);
  for (const [name, part] of Object.entries(h)) {
    if (!isObj(part) || name === "background") continue;
    const l = light(part.status);
    if (l === "amber" || l === "red") said.push(`${LABELS[name] ?? name.replace(/_/g, " ")} is ${l}`);
    if ((l === "amber" || l === "red") && name === "exchanges") said.push(...exchangeReasons(part));
  }
  const deployment = isObj(h.background) && isObj(h.background.deployment) ? h.background.deployment : null;
  if (deployment?.error) said.push(`the deployment's background tasks cannot be read (${text(deployment.error) ?? "error"})`);
  if (isObj(h.background) && !said.length && ["amber", "red"].includes(light(h.background.status))) {
    said.push(`background tasks are ${light(h.background.status)}`);
  }
  return said;
}

/** The view of a /health answer (null: it did not answer; undefined: not yet). */
export function healthView(h: unknown): HealthView {
  if (!isObj(h)) {
    const why = h === undefined ? "waiting for the server's /health" : "the server's /health did not answer";
    return { overall: "unknown", reasons: [why],
             lights: [["event store", "unknown", ""], ["projections", "unknown", ""],
                      ["engine loop", "unknown", ""], ["feed", "unknown", ""]],
             tasks: [], process: null };
  }
  const process = processInfo(h.process);
  const tasks = backgroundTasks(h.background, process);
  const parts = Object.values(h).filter(isObj).map((p) => light(p.status));
  const overall = worst([light(h.status), ...parts, ...tasks.map((t) => t.light)]);
  return { overall, reasons: reasons(h, tasks), lights: partLights(h), tasks, process };
}
