// Labelled inputs and a status line announced to screen readers.
import type { InputHTMLAttributes, ReactNode } from "react";

export function Field({ label, hint, ...input }: { label: string; hint?: string } & InputHTMLAttributes<HTMLInputElement>) {
  const id = `f-${input.name}`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} {...input} aria-describedby={hint ? `${id}-hint` : undefined} />
      {hint && <small id={`${id}-hint`}>{hint}</small>}
    </div>
  );
}

export function Status({ error, children }: { error?: string | null; children?: ReactNode }) {
  if (error) return <p className="error" role="alert">{error}</p>;
  return children ? <p className="ok" role="status">{children}</p> : null;
}

/** The typed errors of a mutation's union (InputErrors, BotErrors…) as one line. */
export function describeErrors(result: any): string | null {
  if (!result || !("code" in result)) return null;
  const fields = (result.errors ?? []).map((e: any) => `${e.field ?? ""}: ${e.message}`).join("; ");
  return `${result.code}: ${result.message}${fields ? ` (${fields})` : ""}`;
}

export function formValues(form: HTMLFormElement): Record<string, string> {
  return Object.fromEntries([...new FormData(form).entries()].map(([k, v]) => [k, String(v)]));
}
