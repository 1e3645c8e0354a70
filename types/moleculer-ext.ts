/**
 * FlashMart's extensions of Moleculer's action schema. Moleculer 0.15's typings declare ActionSchema inside an
 * `export =` namespace that module augmentation cannot reach, so services type their actions with `AppAction`
 * (`const actions = {...} satisfies Record<string, AppAction<XxxThis>>`).
 */
import type { ActionSchema } from "moleculer";

export type Role = "customer" | "admin";

/**
 * Who may call an action, checked on every node by middlewares/permissions.middleware.ts: "authenticated" (any
 * signed-in user) or the roles of which the caller needs one. Absent: no user check (public reads, or internal
 * actions that the gateway does not publish).
 */
export type Permission = "authenticated" | Role[];

export type AppAction<TThis> = ActionSchema<TThis> & {
	permissions?: Permission;
	/** Moleculer honours a per-action timeout (ms); 0.15's typings omit it. */
	timeout?: number;
};
