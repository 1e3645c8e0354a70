/**
 * OpenTelemetry's context manager on the process's one AsyncLocalStorage (lib/request-context.ts) instead of a storage
 * of its own: the library's AsyncLocalStorageContextManager (@opentelemetry/context-async-hooks 2.x) with `active`
 * `with` and the experimental `attach` moved to the shared store. Its `bind` (functions and event emitters) is inherited
 * and runs through `with`, so it follows.
 */
import { type Context, ROOT_CONTEXT } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
	currentTraceContext,
	enterTraceContext,
	runInTraceContext
} from "../../lib/request-context";

export class SharedStorageContextManager extends AsyncLocalStorageContextManager {
	override active(): Context {
		return (currentTraceContext() as Context | undefined) ?? ROOT_CONTEXT;
	}

	override with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
		context: Context,
		fn: F,
		thisArg?: ThisParameterType<F>,
		...args: A
	): ReturnType<F> {
		const cb = thisArg == null ? fn : fn.bind(thisArg);
		return runInTraceContext(context, () => cb(...args));
	}

	override attach(context: Context): ReturnType<AsyncLocalStorageContextManager["attach"]> {
		return { dispose: enterTraceContext(context) };
	}
}
