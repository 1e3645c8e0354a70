/**
 * What the operator commands of the REPL share (repl/commands/*): the definition moleculer-repl takes, calls made
 * as a user of a role (the permissions middleware checks `ctx.meta.user` on every node), and printing as JSON, so an
 * answer can be copied into a ticket or a script as it is.
 */
import type { ServiceBroker } from "moleculer";
import type { AuthUser } from "../types/meta";
import type { Role } from "../types/moleculer-ext";

/** A moleculer-repl 0.8 custom command (its `customCommands` entries). */
export interface ReplCommand {
	command: string;
	description: string;
	alias?: string[];
	allowUnknownOptions?: boolean;
	options?: Array<{ option: string; description: string }>;
	action(broker: ServiceBroker, args: ReplArgs): Promise<void>;
}

/** What moleculer-repl hands an action: the declared arguments by name, and `--flags` under `options`. */
export type ReplArgs = Record<string, unknown> & { options: Record<string, unknown> };

export const ROLES: readonly Role[] = ["customer", "admin"];

/** The user a REPL call runs as: the roles a token of that role would carry (an admin is a customer too). */
export function operatorUser(role: Role, id?: string): AuthUser {
	return {
		id: id ?? `repl-${role}`,
		email: `${id ?? role}@repl.flashmart.local`,
		roles: role === "admin" ? ["customer", "admin"] : ["customer"]
	};
}

/** Calls `action` as a user of `role`. */
export function callAs<T = unknown>(
	broker: ServiceBroker,
	role: Role,
	action: string,
	params: object = {},
	userId?: string
): Promise<T> {
	return broker.call(action, params, { meta: { user: operatorUser(role, userId) } }) as Promise<T>;
}

/** An answer, or what went wrong getting it: one missing part never hides the others. */
export async function part<T>(get: () => Promise<T>): Promise<T | { error: string }> {
	try {
		return await get();
	} catch (err) {
		return { error: describe(err) };
	}
}

/** An error as a line: its type and message (no stack). */
export function describe(err: unknown): string {
	const e = err as { name?: string; type?: string; message?: string; code?: unknown };
	return [e.name, e.type && e.type !== e.name ? `(${e.type})` : "", e.message ?? String(err)]
		.filter(Boolean)
		.join(" ");
}

export function print(value: unknown): void {
	console.log(JSON.stringify(value, null, 2));
}

export function printError(err: unknown): void {
	console.error(`>> ERROR: ${describe(err)}`);
}

/** Runs a command's work and prints its answer, or the error (moleculer-repl would log a stack). */
export async function report(work: () => Promise<unknown>): Promise<void> {
	try {
		print(await work());
	} catch (err) {
		printError(err);
	}
}

/** The stock holds of an order or of a product (inventory.holds: admin). */
export async function holdsOf(
	broker: ServiceBroker,
	query: { orderId?: string; productId?: string }
): Promise<
	Array<{ orderId: string; productId: string; quantity: number; state: string; saleId?: string }>
> {
	return callAs(broker, "admin", "inventory.holds", query);
}
