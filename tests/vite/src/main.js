// A minimal SPA entry: renders message.js and takes its hot updates without a page reload,
// so the e2e test can tell an HMR update (through the gateway's WebSocket) from a reload.
import { message } from "./message.js";

function render(text) {
  document.getElementById("message").textContent = text;
}

render(message);

if (import.meta.hot) {
  import.meta.hot.accept("./message.js", (next) => {
    if (next) {
      render(next.message);
      window.__hotUpdates = (window.__hotUpdates || 0) + 1;
    }
  });
}
