/**
 * The audit side of one API request: its trail id, the intent record
 * written before it changes anything (when the sink wants intents), and
 * its own record at the end.
 *
 * Fail-closed, the answer to a request that changed nothing (a read, a
 * refusal) is withheld, replaced by a 503, when its record could not be
 * written: a secret is never handed out unaudited. A request that changed
 * state keeps its answer: its intent was written durably before the change,
 * and a 503 would wrongly tell the client nothing happened.
 *
 * @module
 */
import type { AuditIntentTicket, AuditNote, AuditRecord, AuditSink } from "./audit.ts";

/** Who asked for what, known when the request arrives. */
export interface RequestFacts {
  /** The authenticated caller, or `null`. */
  readonly spiffeId: string | null;
  /** URL path. */
  readonly route: string;
  /** `?action=` value. */
  readonly action: string;
}

/** One request's audit. */
export class RequestAudit {
  /** The request's trail id (its intent and its record share it). */
  readonly trail: string = crypto.randomUUID();
  readonly #sink: AuditSink;
  #ticket: Promise<AuditIntentTicket> | undefined;
  #announced = false;
  #carried = false;

  /** Starts a request's audit; sets `note.beforeChange` when the sink wants intents. */
  constructor(sink: AuditSink, clock: () => Date, note: AuditNote, facts: RequestFacts) {
    this.#sink = sink;
    const intent = sink.intent?.bind(sink);
    if (!intent) return;
    note.beforeChange = async () => {
      // Written once per request, with what authorization has noted by now.
      this.#ticket ??= intent({
        time: clock().toISOString(),
        type: "audit-intent",
        trail: this.trail,
        spiffeId: facts.spiffeId,
        route: facts.route,
        action: facts.action,
        resource: note.resource ?? null,
        permissions: note.permissions ?? null,
        ...(note.resources ? { resources: note.resources } : {}),
      });
      const ticket = await this.#ticket;
      this.#announced = true;
      return { row: ticket.row, carried: () => void (this.#carried = true) };
    };
  }

  /**
   * Writes the request's record (after settling its intent). Resolves
   * whether the answer may go out: `false` only fail-closed, for a request
   * that changed nothing and whose record was not written.
   */
  async finish(record: AuditRecord): Promise<boolean> {
    const ticket = await this.#ticket?.catch(() => undefined);
    ticket?.settle(this.#carried);
    const written = this.#sink.record(record);
    if (written === undefined) return true;
    return (await written) || this.#announced;
  }
}
