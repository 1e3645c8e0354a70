/**
 * Settles a remote call at its deadline from the inside.
 *
 * Moleculer's Timeout middleware wraps outside its ContextTracker: when a remote call times out, the caller gets its
 * RequestTimeoutError, but the inner transit promise is never settled (the pending request is dropped), so the
 * tracked context stays in the tracker's list for good: memory grows with every timeout and a graceful stop waits
 * the whole shutdown timeout for requests that were answered long ago. User middlewares wrap innermost, so this one
 * rejects the inner promise a moment after the deadline and the tracker lets go.
 */
import { Errors, type Context, type Middleware } from "moleculer";

type Handler = (ctx: Context) => Promise<unknown>;

/** Lets the Timeout middleware answer first, with its own metrics and log line. */
const GRACE_MS = 25;

const DeadlineMiddleware: Middleware = {
	name: "Deadline",
	remoteAction(next: Handler) {
		return function settleAtDeadline(ctx: Context) {
			const timeout = ctx.options.timeout;
			if (!timeout || timeout <= 0) return next(ctx);
			let timer: NodeJS.Timeout | undefined;
			const deadline = new Promise<never>((_resolve, reject) => {
				timer = setTimeout(
					() =>
						reject(
							new Errors.RequestTimeoutError({ action: ctx.action?.name, nodeID: ctx.nodeID })
						),
					timeout + GRACE_MS
				);
			});
			return Promise.race([next(ctx), deadline]).finally(() => clearTimeout(timer));
		};
	}
} as unknown as Middleware;

export default DeadlineMiddleware;
