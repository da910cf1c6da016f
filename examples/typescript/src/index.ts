import ms from "ms";

interface Event {
  seconds?: number;
}

// Compiled to dist/index.js by `npm run build`; Lambda runs dist/ with the dependencies that
// lambdazip-tf takes from this folder's node_modules (package_dir).
export const handler = async (event: Event) => {
  if ((event.seconds ?? 0) < 0) {
    throw new RangeError(`seconds must not be negative, got ${event.seconds}`);
  }
  return { waited: ms((event.seconds ?? 60) * 1000) };
};
