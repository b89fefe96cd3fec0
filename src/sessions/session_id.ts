/** Session ids: 144 random bits from the OS CSPRNG, base64url, so they cannot be guessed or enumerated. */
const ID_BYTES = 18;
const PREFIX = "sess_";

export function newSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(ID_BYTES));
  const b64 = btoa(String.fromCharCode(...bytes));
  return PREFIX + b64.replaceAll("+", "-").replaceAll("/", "_");
}

/** True for strings shaped like our ids; anything else cannot name a session and is never looked up. */
export function isSessionIdShape(id: string): boolean {
  return /^sess_[A-Za-z0-9_-]{24}$/.test(id);
}
