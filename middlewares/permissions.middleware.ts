/**
 * Role-based access control on every node, not only at the gateway: an action that declares `permissions` runs only
 * for a caller (`ctx.meta.user`, set by the gateway from a verified token) who has them. No user: 401 NO_TOKEN;
 * a user without the role: 403 FORBIDDEN.
 */
import type { Context, Middleware } from "moleculer";
import { ForbiddenError, UnauthorizedError } from "../lib/errors";
import type { AppMeta } from "../types/meta";
import type { Permission } from "../types/moleculer-ext";

type Handler = (ctx: Context) => Promise<unknown>;

/** Whether `roles` satisfy `permission`. */
export function allows(permission: Permission, roles: string[]): boolean {
	return permission === "authenticated" || permission.some(role => roles.includes(role));
}

const PermissionsMiddleware = {
	name: "Permissions",
	localAction(next: Handler, action: { permissions?: Permission }) {
		const permission = action.permissions;
		if (!permission) return next;
		return function checkPermissions(ctx: Context) {
			const user = (ctx.meta as AppMeta).user;
			if (!user)
				return Promise.reject(new UnauthorizedError("NO_TOKEN", "Authentication required"));
			if (!allows(permission, user.roles)) return Promise.reject(new ForbiddenError());
			return next(ctx);
		};
	}
} as unknown as Middleware;

export default PermissionsMiddleware;
