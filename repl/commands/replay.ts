/** `replay <eventId>`: publishes a dead-lettered event again on its channel and takes it off the dead letters. */
import type { ServiceBroker } from "moleculer";
import { deadLetterStore } from "../../adapters/events";
import { type ReplArgs, type ReplCommand, report } from "../operator";

export const replayCommand: ReplCommand = {
	command: "replay <eventId>",
	description:
		"Publish a dead-lettered event again on its channel (every consumer group gets it; those that took it already ignore it by eventId)",
	async action(broker: ServiceBroker, args: ReplArgs) {
		const eventId = String(args.eventId);
		await report(async () => {
			const letter = await deadLetterStore(broker).replay(eventId);
			if (!letter) throw new Error(`No dead letter with eventId ${eventId}`);
			return { replayed: letter };
		});
	}
};
