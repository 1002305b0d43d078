// Who is signed in and which accounts they hold (for the PAPER/SANDBOX/LIVE banner).
import { createContext, useContext } from "react";
import type { AccountMode } from "./components/Banner";

export interface Me {
  id: string;
  email: string;
  displayName: string | null;
  role: "USER" | "PROVIDER" | "ADMIN";
  emailVerified: boolean;
  registeredAt: string;
  paperAccountId: string;
}

export interface Account { id: string; name: string; kind: string; sandbox: boolean; mode: AccountMode }

export interface Session { me: Me; accounts: Account[]; reload: () => void }

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("no session");
  return session;
}

export const ME = `{ me { id email displayName role emailVerified registeredAt paperAccountId }
  exchangeAccounts(first: 100) { edges { node { id name kind sandbox } } } }`;
