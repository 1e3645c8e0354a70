import { Errors } from "moleculer";
import {
	ConflictError,
	NotFoundError,
	ServiceUnavailableError,
	toHttpError
} from "../../../lib/errors";

describe("errors.toHttpError", () => {
	it("keeps a client error's name, type, message and data", () => {
		const out = toHttpError(
			new ConflictError("EMAIL_TAKEN", "Email already registered", { field: "email" })
		);
		expect(out).toEqual({
			name: "ConflictError",
			message: "Email already registered",
			code: 409,
			type: "EMAIL_TAKEN",
			data: { field: "email" }
		});
	});

	it("lists a validation error's fields without echoing the submitted values", () => {
		const err = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
			{ type: "stringMin", field: "password", message: "too short", actual: "hunter2" }
		]);
		const out = toHttpError(err);
		expect(out.code).toBe(422);
		expect(out.type).toBe("VALIDATION_ERROR");
		expect(out.data).toEqual([{ type: "stringMin", field: "password", message: "too short" }]);
		expect(JSON.stringify(out)).not.toContain("hunter2");
	});

	it.each([
		[
			"a missing service",
			new Errors.ServiceNotFoundError({ action: "users.get" }),
			503,
			"SERVICE_UNAVAILABLE"
		],
		[
			"no live endpoint",
			new Errors.ServiceNotAvailableError({ action: "users.get" }),
			503,
			"SERVICE_UNAVAILABLE"
		],
		[
			"a node that left",
			new Errors.RequestRejectedError({ action: "x", nodeID: "node-7" }),
			503,
			"SERVICE_UNAVAILABLE"
		],
		[
			"a full bulkhead",
			new Errors.QueueIsFullError({ action: "x", nodeID: "node-7" }),
			503,
			"SERVICE_UNAVAILABLE"
		],
		[
			"a timeout",
			new Errors.RequestTimeoutError({ action: "x", nodeID: "node-7" }),
			504,
			"REQUEST_TIMEOUT"
		],
		[
			"a store outage",
			new ServiceUnavailableError("mongo down at 10.0.0.3"),
			503,
			"SERVICE_UNAVAILABLE"
		]
	])("turns %s into %i without internal details", (_what, err, code, type) => {
		const out = toHttpError(err);
		expect(out.code).toBe(code);
		expect(out.type).toBe(type);
		expect(out.data).toBeUndefined();
		expect(JSON.stringify(out)).not.toMatch(/node-7|10\.0\.0\.3|users\.get/);
	});

	it("hides anything unexpected behind a detail-free 500", () => {
		const out = toHttpError(
			new TypeError("Cannot read properties of undefined (reading 'x') at /srv/app.js:1")
		);
		expect(out).toEqual({
			name: "InternalServerError",
			message: "Internal server error",
			code: 500,
			type: "INTERNAL_ERROR"
		});
		expect(toHttpError(new Errors.MoleculerServerError("db exploded", 500, "DB")).type).toBe(
			"INTERNAL_ERROR"
		);
		expect(toHttpError("a string").code).toBe(500);
	});

	it("maps body-parser errors to 400, 413 and 415", () => {
		expect(toHttpError({ type: "entity.parse.failed", status: 400 })).toMatchObject({
			code: 400,
			type: "INVALID_REQUEST_BODY"
		});
		expect(toHttpError({ type: "entity.too.large", status: 413 })).toMatchObject({
			code: 413,
			type: "PAYLOAD_TOO_LARGE"
		});
		expect(toHttpError({ type: "request.aborted", status: 400 })).toMatchObject({
			code: 400,
			type: "INVALID_REQUEST_BODY"
		});
		// The gateway's UTF-8 check, thrown from the parser's verify (body-parser would make it a 403).
		expect(toHttpError({ type: "entity.utf8.invalid", status: 403 })).toMatchObject({
			code: 400,
			type: "INVALID_REQUEST_BODY",
			message: "The request body is not valid UTF-8"
		});
		expect(toHttpError({ type: "charset.unsupported", status: 403 })).toMatchObject({
			code: 415,
			type: "UNSUPPORTED_MEDIA_TYPE"
		});
	});

	it("keeps NOT_FOUND a 404", () => {
		expect(toHttpError(new NotFoundError("Product"))).toMatchObject({
			code: 404,
			type: "NOT_FOUND",
			message: "Product not found"
		});
	});
});
