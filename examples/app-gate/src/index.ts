/** The example app, for tests: `buildApp` wires a fastify app to an assurance client. */
export { ACTION, buildApp, demoHeaderSession, type Session, type SessionLookup } from './app.ts';
