/**
 * The dead letters of durable events, for operators (the REPL's `deadletters` and `replay`): messages a consumer
 * group failed on EVENT_MAX_RETRIES + 1 times. In the cluster mode they are the JetStream stream
 * `<namespace>_FAILED_MESSAGES` (kept EVENT_RETENTION seconds); in the embedded mode the in-process adapter keeps the
 * last DEAD_LETTERS_KEPT of them in memory, for the life of the process.
 */
import type { ServiceBroker } from "moleculer";
import type { AdapterBase } from "./channels";
import { DEAD_LETTER_QUEUE } from "./channels";

export interface DeadLetter {
	/** Where the store keeps it (the JetStream sequence, or the position in memory). */
	seq: number;
	/** The event's own id, when its payload has one (every FlashMart event does). */
	eventId: string | null;
	/** The channel it was published on, namespace included (`flashmart.orders.paid`). */
	channel: string;
	/** The consumer group that gave up on it. */
	group: string;
	at: string;
	payload: unknown;
}

export interface DeadLetterStore {
	/** The newest `limit` dead letters, oldest first. */
	list(limit: number): Promise<DeadLetter[]>;
	/**
	 * Publishes the dead letter of `eventId` again on its channel, then removes it: every consumer group of that
	 * channel gets it once more (consumers dedupe by eventId, so only the ones that never took it act). Null when
	 * there is none.
	 */
	replay(eventId: string): Promise<DeadLetter | null>;
}

/** The embedded mode keeps this many dead letters at most (the oldest go first). */
export const DEAD_LETTERS_KEPT = 1000;

const eventIdOf = (payload: unknown): string | null => {
	const id = (payload as { eventId?: unknown } | null)?.eventId;
	return typeof id === "string" ? id : null;
};

/** Dead letters kept in memory by the in-process adapter. */
export class MemoryDeadLetters implements DeadLetterStore {
	private readonly kept: DeadLetter[] = [];
	private next = 1;

	constructor(private readonly adapter: AdapterBase) {}

	add(channel: string, group: string, payload: unknown): void {
		this.kept.push({
			seq: this.next++,
			eventId: eventIdOf(payload),
			channel,
			group,
			at: new Date().toISOString(),
			payload
		});
		if (this.kept.length > DEAD_LETTERS_KEPT) this.kept.shift();
	}

	async list(limit: number): Promise<DeadLetter[]> {
		return this.kept.slice(-limit);
	}

	async replay(eventId: string): Promise<DeadLetter | null> {
		const index = this.kept.findIndex(d => d.eventId === eventId);
		if (index < 0) return null;
		const [letter] = this.kept.splice(index, 1);
		try {
			await this.adapter.publish(letter.channel, letter.payload);
		} catch (err) {
			this.kept.splice(index, 0, letter);
			throw err;
		}
		return letter;
	}
}

/** What this file uses of nats.js's JetStream manager (the library's adapter holds one once connected). */
interface StreamsApi {
	info(stream: string): Promise<{ state: { first_seq: number; last_seq: number } }>;
	getMessage(
		stream: string,
		query: { seq: number }
	): Promise<{ seq: number; time: Date; data: Uint8Array; header?: { get(k: string): string } }>;
	deleteMessage(stream: string, seq: number): Promise<boolean>;
}

/** Dead letters in the JetStream stream the library moves them to. */
export class JetStreamDeadLetters implements DeadLetterStore {
	constructor(
		private readonly adapter: AdapterBase & { manager?: { streams: StreamsApi } | null }
	) {}

	private get streams(): StreamsApi {
		const manager = this.adapter.manager;
		if (!manager) throw new Error("The durable events adapter is not connected to JetStream");
		return manager.streams;
	}

	private get stream(): string {
		return this.adapter.addPrefixTopic(DEAD_LETTER_QUEUE).split(".").join("_");
	}

	private async read(seq: number): Promise<DeadLetter | null> {
		try {
			const msg = await this.streams.getMessage(this.stream, { seq });
			let payload: unknown = null;
			try {
				payload = JSON.parse(Buffer.from(msg.data).toString("utf8"));
			} catch {
				payload = Buffer.from(msg.data).toString("utf8");
			}
			return {
				seq: msg.seq,
				eventId: eventIdOf(payload),
				channel: msg.header?.get("x-original-channel") ?? "",
				group: msg.header?.get("x-original-group") ?? "",
				at: msg.time.toISOString(),
				payload
			};
		} catch (err) {
			// A replayed (deleted) message leaves a gap in the sequence.
			if (/no message found|not found/i.test((err as Error).message)) return null;
			throw err;
		}
	}

	/** Every sequence still in the stream, newest first, read until `want` says stop. */
	private async scan(want: (letter: DeadLetter) => boolean): Promise<void> {
		let state: { first_seq: number; last_seq: number };
		try {
			({ state } = await this.streams.info(this.stream));
		} catch (err) {
			// No consumer ever dead-lettered anything: the stream was never made.
			if (/stream not found/i.test((err as Error).message)) return;
			throw err;
		}
		for (let seq = state.last_seq; seq >= state.first_seq && seq > 0; seq--) {
			const letter = await this.read(seq);
			if (letter && !want(letter)) return;
		}
	}

	async list(limit: number): Promise<DeadLetter[]> {
		const out: DeadLetter[] = [];
		await this.scan(letter => out.unshift(letter) < limit);
		return out;
	}

	async replay(eventId: string): Promise<DeadLetter | null> {
		let found: DeadLetter | null = null;
		await this.scan(letter => {
			if (letter.eventId === eventId) found = letter;
			return found === null;
		});
		if (!found) return null;
		const letter: DeadLetter = found;
		// Without a msgID: JetStream's duplicate window would drop a replay of an event published minutes ago.
		await this.adapter.publish(letter.channel, letter.payload);
		await this.streams.deleteMessage(this.stream, letter.seq);
		return letter;
	}
}

/** The dead letters of the node `broker` runs on, through the channels middleware's adapter. */
export function deadLetterStore(broker: ServiceBroker): DeadLetterStore {
	const adapter = (
		broker as unknown as { channelAdapter?: AdapterBase & { deadLetters?: unknown } }
	).channelAdapter;
	if (!adapter) throw new Error("This node runs no durable events adapter");
	if (adapter.deadLetters instanceof MemoryDeadLetters) return adapter.deadLetters;
	return new JetStreamDeadLetters(adapter);
}
