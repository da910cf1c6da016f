import ms from "ms";

interface Event {
  seconds?: number;
}

// Compiled to dist/index.js by `npm run build`; Lambda runs dist/ with the dependencies that
// lambdazip-tf takes from this folder's node_modules (package_dir).
export const handler = async (event: Event) => ({
  waited: ms((event.seconds ?? 60) * 1000),
});
