/**
 * A client that hangs up before its request body has arrived: its fault,
 * not the server's. The HTTP bridge fails the body stream with
 * {@linkcode ClientClosedError}; apps answer it with
 * {@linkcode CLIENT_CLOSED_STATUS}, which no client ever sees but which the
 * audit trail and the metrics record instead of a 500.
 *
 * @module
 */

/** The request body stream broke because the client closed the connection. */
export class ClientClosedError extends Error {
  /** Creates the error; it carries no request data. */
  constructor() {
    super("client closed the connection before the request body ended");
    this.name = "ClientClosedError";
  }
}

/**
 * Status recorded for a request whose client went away mid-body: 499,
 * "client closed request" (nginx's convention). Never sent, never a 5xx.
 */
export const CLIENT_CLOSED_STATUS = 499;
