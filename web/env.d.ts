/** CSS imported by the page's modules; esbuild bundles it into main.css. */
declare module "*.css";
