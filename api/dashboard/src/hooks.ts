// Small data hooks over gql.ts: a query with its loading/error state, and a live query that
// asks again (at most every ``throttleMs``) whenever a websocket subscription says something
// changed, so a page stays current without reloading.
import { useCallback, useEffect, useRef, useState } from "react";
import { gql, subscribe } from "./gql";

export interface QueryState<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  refetch: () => void;
}

export function useQuery<T = any>(query: string, variables: object = {}, skip = false): QueryState<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(!skip);
  const key = JSON.stringify(variables);
  const seq = useRef(0);
  const refetch = useCallback(() => {
    if (skip) return;
    const mine = ++seq.current; // a late answer to an older question is dropped
    setLoading(true);
    gql<T>(query, JSON.parse(key))
      .then((d) => mine === seq.current && (setData(d), setError(null)))
      .catch((e: Error) => mine === seq.current && setError(e.message))
      .finally(() => mine === seq.current && setLoading(false));
  }, [query, key, skip]);
  useEffect(refetch, [refetch]);
  return { data, error, loading, refetch };
}

/** Re-run ``refetch`` when the subscription ``topic`` sends anything. */
export function useLiveRefetch(refetch: () => void, topic: string, variables: object = {},
                               throttleMs = 1000, enabled = true): void {
  const last = useRef(0);
  const timer = useRef<number | undefined>(undefined);
  const key = JSON.stringify(variables);
  useEffect(() => {
    if (!enabled) return;
    const unsubscribe = subscribe(topic, JSON.parse(key), () => {
      const wait = Math.max(0, last.current + throttleMs - Date.now());
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(() => {
        last.current = Date.now();
        refetch();
      }, wait);
    });
    return () => {
      unsubscribe();
      window.clearTimeout(timer.current);
    };
  }, [refetch, topic, key, throttleMs, enabled]);
}

export const PORTFOLIO_UPDATES = "subscription { portfolioUpdates { dealsClosed } }";
/** Every deal and order event of all the caller's bots, on one subscription. */
export const DEAL_EVENTS = "subscription { dealEvents { type } }";

/** A background job's state (a fetch, a rebuild) as its progress subscription pushes it:
 *  ``field`` of each message, from the first one to the last (the job ended). */
export function useJobProgress<T = any>(subscription: string, field: string, id: string | null): T | null {
  const [state, setState] = useState<T | null>(null);
  useEffect(() => {
    setState(null);
    if (!id) return;
    return subscribe(subscription, { id }, (d: any) => setState(d[field]));
  }, [subscription, field, id]);
  return state;
}
