// The dashboard's GraphQL client: queries and mutations POSTed to /graphql, subscriptions
// over graphql-ws on the same address. It talks to the public API only, like any front end.
import { createClient, type Client } from "graphql-ws";

const ACCESS = "tradetape.access";
const REFRESH = "tradetape.refresh";
const EXPIRED = new Set(["TOKEN_EXPIRED"]);
const SIGNED_OUT = new Set(["AUTHENTICATION_REQUIRED", "SESSION_REVOKED", "ACCOUNT_BLOCKED"]);

export class GqlError extends Error {
  constructor(message: string, public code?: string) {
    super(message);
  }
}

type Listener = () => void;
const listeners = new Set<Listener>();
export function onAuthChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function accessToken(): string | null {
  return localStorage.getItem(ACCESS);
}

export function setTokens(access: string | null, refresh: string | null): void {
  if (access && refresh) {
    localStorage.setItem(ACCESS, access);
    localStorage.setItem(REFRESH, refresh);
  } else {
    localStorage.removeItem(ACCESS);
    localStorage.removeItem(REFRESH);
  }
  resetSocket(); // the websocket authenticates once, when it connects
  listeners.forEach((l) => l());
}

async function post(query: string, variables?: object): Promise<any> {
  const token = accessToken();
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

let refreshing: Promise<boolean> | null = null;

// One refresh at a time: the refresh token is spent by its use.
function refreshTokens(): Promise<boolean> {
  refreshing ??= (async () => {
    const refreshToken = localStorage.getItem(REFRESH);
    if (!refreshToken) return false;
    localStorage.removeItem(ACCESS);
    const body = await post(
      `mutation($t: String!) { refresh(refreshToken: $t) {
        ... on AuthPayload { accessToken refreshToken } ... on AuthError { code } } }`,
      { t: refreshToken },
    );
    const payload = body?.data?.refresh;
    if (payload?.accessToken) {
      setTokens(payload.accessToken, payload.refreshToken);
      return true;
    }
    setTokens(null, null);
    return false;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

export async function gql<T = any>(query: string, variables?: object): Promise<T> {
  let body = await post(query, variables);
  let code = body?.errors?.[0]?.extensions?.code;
  if (EXPIRED.has(code) && (await refreshTokens())) {
    body = await post(query, variables);
    code = body?.errors?.[0]?.extensions?.code;
  }
  if (SIGNED_OUT.has(code) || EXPIRED.has(code)) setTokens(null, null);
  if (body?.errors?.length) throw new GqlError(body.errors[0].message, code);
  return body.data as T;
}

let socket: Client | null = null;

function resetSocket(): void {
  socket?.dispose();
  socket = null;
}

function client(): Client {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket ??= createClient({
    url: `${scheme}://${location.host}/graphql`,
    lazy: true,
    retryAttempts: Infinity,
    connectionParams: () => {
      const token = accessToken();
      return token ? { Authorization: `Bearer ${token}` } : {};
    },
  });
  return socket;
}

/** Calls ``next`` with each answer's data; returns the unsubscribe. */
export function subscribe<T = any>(
  query: string,
  variables: object,
  next: (data: T) => void,
): () => void {
  return client().subscribe<T>(
    { query, variables: variables as Record<string, unknown> },
    {
      next: (result) => result.data && next(result.data as T),
      error: () => undefined, // graphql-ws retries; the page keeps its last answer
      complete: () => undefined,
    },
  );
}
