import { ChatPage } from "./chat-page.js";
import { byId } from "./dom.js";
import { devLogin, devLoginEnabled, pastedToken, savedCredentials, type Credentials } from "./sign-in.js";

// The page's entry (bundled by scripts/build-web.ts): sign in, then chat.

const view = byId("sign-in-view");
const form = byId<HTMLFormElement>("sign-in");
const nameInput = byId<HTMLInputElement>("sign-in-name");
const tokenInput = byId<HTMLTextAreaElement>("sign-in-token");
const tokenLogin = byId("token-login");
const tokenInstead = byId<HTMLDetailsElement>("token-instead");
const error = byId("sign-in-error");
const status = byId("status");

let byName = false;

function showSignIn(message = ""): void {
  view.hidden = false;
  error.textContent = message;
  status.dataset.state = "idle";
  status.textContent = "Not signed in";
  (byName ? nameInput : tokenInput).focus();
}

function start(credentials: Credentials): void {
  savedCredentials.set(credentials);
  view.hidden = true;
  new ChatPage(credentials, (message) => {
    savedCredentials.clear();
    showSignIn(message);
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  error.textContent = "";
  const useName = byName && !tokenInstead.open;
  const attempt = useName ? devLogin(nameInput.value.trim()) : Promise.resolve().then(() => pastedToken(tokenInput.value));
  attempt.then(start, (e: unknown) => {
    error.textContent = (e as Error).message;
  });
});

// Dev login: sign in by name; a token can still be pasted ("Use a token instead").
tokenInstead.addEventListener("toggle", () => {
  tokenLogin.hidden = !tokenInstead.open;
  nameInput.disabled = tokenInstead.open;
});
// Enter in the token box signs in (Shift+Enter would add nothing useful to a token).
tokenInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

byName = await devLoginEnabled();
byId("dev-login").hidden = !byName;
tokenLogin.hidden = byName;
const saved = savedCredentials.get();
if (saved) start(saved);
else showSignIn();
