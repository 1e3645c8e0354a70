/**
 * FlashMart's extensions of Moleculer's action schema. Moleculer 0.15's typings declare ActionSchema inside an
 * `export =` namespace that module augmentation cannot reach, so services type their actions with `AppAction`
 * (`const actions = {...} satisfies Record<string, AppAction<XxxThis>>`).
 */
import type { ActionSchema, Context } from "moleculer";

export type Role = "customer" | "admin";

/**
 * Who may call an action, checked on every node by middlewares/permissions.middleware.ts: "authenticated" (any
 * signed-in user) or the roles of which the caller needs one. Absent: no user check (public reads, or internal
 * actions that the gateway does not publish).
 */
export type Permission = "authenticated" | Role[];

/** An error answer an action gives beyond validation, declared beside it so the OpenAPI document lists it. */
export interface ActionError {
	status: number;
	type: string;
	/** When it happens, for the document. */
	description: string;
}

export type AppAction<TThis> = ActionSchema<TThis> & {
	permissions?: Permission;
	errors?: ActionError[];
	/** Moleculer honours a per-action timeout (ms); 0.15's typings omit it. */
	timeout?: number;
};

/**
 * A durable event consumer (@moleculer/channels with `context: true`, see adapters/events/): the handler gets a Context
 * whose params are the event's payload; throwing makes the message come again (then the dead-letter destination).
 */
export interface AppChannel<TThis, TPayload = Record<string, unknown>> {
	/** Consumer group: each group gets every message once (default: the service name). */
	group?: string;
	maxInFlight?: number;
	maxRetries?: number;
	handler(this: TThis, ctx: Context<TPayload>): Promise<void>;
}

/** A service schema with durable event consumers (Moleculer's typings do not know the channels middleware). */
export type WithChannels<TSchema, TThis> = TSchema & {
	channels?: Record<string, AppChannel<TThis, any>>;
};
