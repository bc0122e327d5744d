/**
 * A tool some tests need that a developer's machine may lack (the Prometheus server, say). Locally,
 * its absence skips those tests, each one counted as skipped in the summary. In CI (`CI` set, as
 * .ci/run does) nothing may be skipped for want of a tool: the tests run and fail, saying what is
 * missing, so a green CI run always means every test ran.
 *
 * Returns the `skip` option for each test: a reason, or false.
 */
export function prerequisite(present: boolean, what: string, install: string): string | false {
  if (present) return false;
  if (process.env.CI) return false;
  return `${what} is not installed (${install}); in CI this fails instead`;
}

/** The same message, for the assertion that fails in CI. */
export function missing(what: string, install: string): string {
  return `${what} is required here and missing: ${install}`;
}
