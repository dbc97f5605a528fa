/**
 * What `npm pack` would publish, read from `npm pack --dry-run --json` (no
 * lifecycle scripts: `npm test` has built dist/ already): every entry point
 * of `exports` and `bin` is in the tarball, nothing else is (no source maps
 * pointing at unshipped sources, no tests, no TypeScript sources), the
 * library has no runtime dependency (the command's packages are optional
 * peers), and the README's pictures are committed files linked relative to
 * it (absolute links, which a registry page needs, wait for a public
 * repository address: none exists yet, and a made-up one would be a dead link).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

interface PackJson {
  files: { path: string; size: number }[];
  entryCount: number;
  unpackedSize: number;
}

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const packed = JSON.parse(
  execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }),
)[0] as PackJson;
const files = new Set(packed.files.map((f) => f.path));

/** Every path the package may contain: the built library, its declarations, the demo page, the bin, the docs. */
const ALLOWED = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^CHANGELOG\.md$/,
  /^bin\/covshift\.js$/,
  /^dist\/src\/.+\.(js|d\.ts)$/,
  /^dist\/web\/(index\.html|main\.js|main\.css|worker\.js|worker\.js\.LEGAL\.txt)$/,
];

describe("npm pack", () => {
  it("holds every exports target, the bin, LICENSE, README and CHANGELOG", () => {
    const expected = ["package.json", "README.md", "LICENSE", "CHANGELOG.md", "bin/covshift.js", "dist/web/index.html", "dist/web/worker.js"];
    for (const entry of Object.values(pkg.exports) as Record<string, string>[]) {
      for (const target of Object.values(entry)) expected.push(target.replace(/^\.\//, ""));
    }
    for (const target of Object.values(pkg.bin) as string[]) expected.push(target.replace(/^\.\//, ""));
    const missing = expected.filter((f) => !files.has(f));
    assert.deepEqual(missing, [], `missing from the tarball: ${missing.join(", ")}`);
  });

  it("holds nothing else: no source maps, tests, TypeScript sources or stray files", () => {
    const stray = [...files].filter((f) => !ALLOWED.some((re) => re.test(f)));
    assert.deepEqual(stray, [], `unexpected files in the tarball: ${stray.join(", ")}`);
    assert.ok(![...files].some((f) => f.endsWith(".map")), "source maps point at sources the package does not ship");
    // A sanity bound, so a build that dumps something large into dist/src is noticed: today about 3 MB unpacked.
    assert.ok(packed.unpackedSize < 6e6, `unpacked size ${packed.unpackedSize} bytes`);
  });

  it("the library has no runtime dependencies; the command's packages are optional peers (and devDependencies for this repository)", () => {
    assert.deepEqual(Object.keys(pkg.dependencies ?? {}), []);
    const peers = ["@resvg/resvg-js", "cli-progress", "commander", "vega", "vega-lite"];
    assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), peers);
    for (const name of peers) {
      assert.equal(pkg.peerDependenciesMeta[name]?.optional, true, `${name} must be an optional peer`);
      assert.equal(pkg.devDependencies[name], pkg.peerDependencies[name], `${name}: the devDependency must match the peer range`);
    }
    for (const name of Object.keys(pkg.devDependencies)) assert.ok(!name.startsWith("@tensorflow/"), `${name} belongs in bench/peers`);
  });

  it("package.json names the license and keywords, and no repository until the project has a public one", () => {
    assert.equal(pkg.license, "MIT");
    assert.match(readFileSync("LICENSE", "utf8"), /^MIT License/);
    assert.ok(Array.isArray(pkg.keywords) && pkg.keywords.includes("batch-normalization"));
    // A made-up address would send users to a page that does not exist; add repository, homepage and bugs
    // (and make the README's pictures absolute under it) once the project is published somewhere.
    assert.equal(pkg.repository, undefined);
  });

  it("the README's pictures are committed files, linked relative to the README", () => {
    const readme = readFileSync("README.md", "utf8");
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
    assert.ok(images.length >= 3, `found ${images.length} pictures`);
    for (const src of images) {
      assert.match(src, /^docs\/[\w./-]+\.(png|svg)$/, `picture ${src} is a relative link into docs/`);
      assert.ok(existsSync(src), `picture ${src} exists`);
    }
  });
});
