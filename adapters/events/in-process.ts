/**
 * Durable events in the embedded mode: @moleculer/channels' in-process adapter on Moleculer's local events, with the
 * retries and dead-letter destination the library's own lacks.
 */
import {
	Adapters,
	type Chan,
	DEAD_LETTER_QUEUE,
	EventsNotReadyError,
	countDeadLetter
} from "./channels";
import { MemoryDeadLetters } from "./dead-letters";

/**
 * In-process (embedded mode): Moleculer's local events, with retries and a dead-letter destination added, and a
 * publish that resolves once the consumers are done (the outbox keeps an event until then).
 */
export class InProcessAdapter extends Adapters.Fake {
	/** Set once the consumers are subscribed: an event emitted before would reach nobody and be lost. */
	subscribed = false;
	/** Nothing consumes the dead-letter channel in one process: operators read them here (the REPL). */
	readonly deadLetters = new MemoryDeadLetters(this);

	override async publish(channel: string, payload: unknown, opts: Record<string, unknown> = {}) {
		if (this.stopping)
			throw new Error("The event adapter is stopping; the message stays in the outbox");
		if (!this.subscribed) throw new EventsNotReadyError();
		await this.broker.emit(`channels.${channel}`, { payload, headers: opts.headers });
	}

	async disconnect(): Promise<void> {
		this.stopping = true;
	}

	async processMessage(chan: Chan, ctx: { params: { payload: unknown } }): Promise<void> {
		const { payload } = ctx.params;
		const attempts = Math.max(1, (chan.maxRetries ?? 0) + 1);
		for (let attempt = 1; ; attempt++) {
			try {
				await chan.handler(payload, ctx.params);
				return;
			} catch (err) {
				if (attempt >= attempts) {
					this.logger.warn(`Consumer '${chan.group}' failed on '${chan.name}'`, err);
					await this.publish(this.addPrefixTopic(DEAD_LETTER_QUEUE), payload, {
						headers: { "x-original-channel": chan.name, "x-original-group": chan.group }
					}).catch(() => undefined);
					this.deadLetters.add(chan.name, chan.group, payload);
					countDeadLetter(this.broker, chan, payload);
					return;
				}
				await new Promise(resolve => setTimeout(resolve, Math.min(50 * 2 ** attempt, 2000)));
			}
		}
	}
}
