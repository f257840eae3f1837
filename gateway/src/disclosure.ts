/**
 * What error messages may tell. With introspection off (production), graphql-js's validation and coercion
 * messages would still name fields, types and values the caller never wrote ("Did you mean \"tenant\"?"), so
 * there the suggestions are cut from every message a client gets, over HTTP and WebSocket alike.
 */
const SUGGESTION = / ?Did you mean(.+?)\?$/;

export function clientMessages(production: boolean): (message: string) => string {
  return production ? (message) => message.replace(SUGGESTION, '') : (message) => message;
}
