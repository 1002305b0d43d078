// Log in, register, verify the email address, reset a forgotten password.
import { useEffect, useState, type FormEvent } from "react";
import { gql, setTokens } from "../gql";
import { go, type Route } from "../router";
import { describeErrors, Field, formValues, Status } from "../components/Form";

const INPUT_ERRORS = "... on InputErrors { code message errors { field message } }";
const ERRORS = `${INPUT_ERRORS} ... on AuthError { code message }`; // resetPassword's union only

function useSubmit(run: (v: Record<string, string>) => Promise<string | null | void>) {
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    run(formValues(e.currentTarget)).then((msg) => msg && setDone(msg))
      .catch((err: Error) => setError(err.message)).finally(() => setBusy(false));
  };
  return { error, done, busy, onSubmit, setError };
}

function Login() {
  const s = useSubmit(async (v) => {
    const d = await gql(`mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
      ... on AuthPayload { accessToken refreshToken } ${"... on AuthError { code message }"} } }`,
      { e: v.email, p: v.password });
    if (d.login.accessToken) {
      setTokens(d.login.accessToken, d.login.refreshToken);
      go("/");
      return;
    }
    throw new Error(describeErrors(d.login) ?? "refused");
  });
  return (
    <form onSubmit={s.onSubmit} aria-labelledby="login-title">
      <h1 id="login-title">Log in</h1>
      <Field label="Email" name="email" type="email" autoComplete="username" required />
      <Field label="Password" name="password" type="password" autoComplete="current-password" required />
      <Status error={s.error} />
      <button type="submit" disabled={s.busy}>Log in</button>
      <p><a href="#/register">Create an account</a> · <a href="#/reset">Forgot your password?</a> ·{" "}
        <a href="#/verify">Verify your email</a></p>
    </form>
  );
}

function Register() {
  const s = useSubmit(async (v) => {
    const d = await gql(`mutation($e: String!, $p: String!, $n: String) {
      register(email: $e, password: $p, displayName: $n) {
        ... on RegisterPayload { verificationSent } ${INPUT_ERRORS} } }`,
      { e: v.email, p: v.password, n: v.displayName || null });
    const err = describeErrors(d.register);
    if (err) throw new Error(err);
    return "Registered. We mailed you a link to verify your address; then log in.";
  });
  return (
    <form onSubmit={s.onSubmit} aria-labelledby="reg-title">
      <h1 id="reg-title">Create an account</h1>
      <Field label="Email" name="email" type="email" autoComplete="username" required />
      <Field label="Display name (optional)" name="displayName" />
      <Field label="Password" name="password" type="password" autoComplete="new-password" required
             hint="At least 12 characters, not a common password." />
      <Status error={s.error}>{s.done}</Status>
      <button type="submit" disabled={s.busy}>Register</button>
      <p><a href="#/login">Back to log in</a></p>
    </form>
  );
}

function Verify({ token }: { token: string | null }) {
  const [outcome, setOutcome] = useState<string | null>(null);
  useEffect(() => {
    if (!token) return;
    gql(`mutation($t: String!) { verifyEmail(token: $t) { ... on User { email } ... on AuthError { code message } } }`,
      { t: token }).then((d) => setOutcome(d.verifyEmail.email
        ? `${d.verifyEmail.email} is verified. You can log in.` : describeErrors(d.verifyEmail)))
      .catch((e: Error) => setOutcome(e.message));
  }, [token]);
  const s = useSubmit(async (v) => {
    const d = await gql(`mutation($e: String!) { resendVerification(email: $e) {
      ... on MailRequestPayload { accepted } ${INPUT_ERRORS} } }`, { e: v.email });
    const err = describeErrors(d.resendVerification);
    if (err) throw new Error(err);
    return "If that address has an unverified account, a new link is on its way.";
  });
  return (
    <form onSubmit={s.onSubmit} aria-labelledby="verify-title">
      <h1 id="verify-title">Verify your email</h1>
      {outcome && <p role="status">{outcome}</p>}
      <Field label="Email" name="email" type="email" required />
      <Status error={s.error}>{s.done}</Status>
      <button type="submit" disabled={s.busy}>Send the link again</button>
      <p><a href="#/">Go to the dashboard</a> · <a href="#/login">Log in</a></p>
    </form>
  );
}

function Reset({ token }: { token: string | null }) {
  const s = useSubmit(async (v) => {
    if (token) {
      const d = await gql(`mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) {
        ... on PasswordPayload { changed } ${ERRORS} } }`, { t: token, p: v.password });
      const err = describeErrors(d.resetPassword);
      if (err) throw new Error(err);
      return "Password changed. Log in with the new one.";
    }
    const d = await gql(`mutation($e: String!) { requestPasswordReset(email: $e) {
      ... on MailRequestPayload { accepted } ${INPUT_ERRORS} } }`, { e: v.email });
    const err = describeErrors(d.requestPasswordReset);
    if (err) throw new Error(err);
    return "If that address has an account, a reset link is on its way (valid 24 hours).";
  });
  return (
    <form onSubmit={s.onSubmit} aria-labelledby="reset-title">
      <h1 id="reset-title">Reset your password</h1>
      {token ? <Field label="New password" name="password" type="password" autoComplete="new-password" required />
        : <Field label="Email" name="email" type="email" required />}
      <Status error={s.error}>{s.done}</Status>
      <button type="submit" disabled={s.busy}>{token ? "Set the new password" : "Mail me a link"}</button>
      <p><a href="#/login">Back to log in</a></p>
    </form>
  );
}

export function AuthPage({ route }: { route: Route }) {
  const token = route.query.get("token");
  switch (route.path[0]) {
    case "register": return <Register />;
    case "verify": return <Verify token={token} />;
    case "reset": return <Reset token={token} />;
    default: return <Login />;
  }
}
