// The e2e test rewrites this line while the page is open: a hot update replaces it in place.
export const message = "hello from vite";
