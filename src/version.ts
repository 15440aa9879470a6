// Kept in step with package.json by test/version.ts; a constant because the bundled exporter
// runs without package.json beside it.
export const VERSION = '0.1.0'
