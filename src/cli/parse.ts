import { InvalidArgumentError } from "commander";

/** An option parser for integers that names the option in its error. */
export const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer; got "${v}"`);
  return n;
};

/** An option parser for finite numbers that names the option in its error. */
export const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number; got "${v}"`);
  return n;
};
