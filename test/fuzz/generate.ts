/**
 * Requests for one operation as fast-check arbitraries: valid ones built from the document's schemas (through a
 * small adapter from schema keywords to fast-check arbitraries), and mutated ones (one change each).
 */
import fc from "fast-check";
import type { Operation, Param, Schema } from "./openapi";

/** A value taken at send time from a pool the run fills (ids, tokens): generation stays seed-determined. */
export class Ref {
	constructor(
		readonly pool: string,
		readonly n: number
	) {}
}

/** A path or query text sent as it is, not percent-encoded. */
export class Raw {
	constructor(readonly text: string) {}
}

export type Persona = "anonymous" | "customer" | "admin";

export interface FuzzRequest {
	op: Operation;
	/** "valid", or the one mutation applied, e.g. "body.null category". */
	mutation: string;
	method: string;
	persona: Persona;
	path: Record<string, unknown>;
	query: Array<[string, unknown]>;
	headers: Record<string, string>;
	/**
	 * Media type and value; `raw` is sent as it is, `json` sends the value as JSON whatever the type, `chunked`
	 * without a Content-Length.
	 */
	body?: {
		type?: string;
		value?: unknown;
		raw?: string | Uint8Array;
		json?: boolean;
		chunked?: boolean;
	};
}

/** Arbitraries for a field by name ("productId") or by operation and name ("orders.get id"). */
export type Hints = Record<string, fc.Arbitrary<unknown>>;

/** Any entry of a pool, taken at send time. */
export const ref = (pool: string) => fc.nat().map(n => new Ref(pool, n));

// A 1x1 PNG: the smallest body the upload accepts as an image.
export const PNG = Buffer.from(
	"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
	"base64"
);
const bytes = fc.oneof(
	{ arbitrary: fc.constant(new Uint8Array(PNG)), weight: 3 },
	fc.uint8Array({ maxLength: 256 })
);
const headerText = (min: number, max: number) =>
	fc.string({
		unit: fc.integer({ min: 0x21, max: 0x7e }).map(c => String.fromCharCode(c)),
		minLength: min,
		maxLength: max
	});

/** The schema → arbitrary adapter. Lengths are capped: long values are a mutation of their own. */
export function fromSchema(
	schema: Schema,
	hint?: (name: string) => fc.Arbitrary<unknown> | undefined
): fc.Arbitrary<unknown> {
	if (schema.const !== undefined) return fc.constant(schema.const);
	if (schema.enum) return fc.constantFrom(...schema.enum);
	if (schema.contentMediaType) return bytes;
	const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
	switch (type) {
		case "string": {
			const min = schema.minLength ?? 0;
			const max = Math.max(min, Math.min(schema.maxLength ?? 40, 40));
			if (schema.format === "email")
				return fc.emailAddress().filter(e => e.length <= (schema.maxLength ?? 254));
			if (schema.format === "date-time")
				return fc.date({ noInvalidDate: true }).map(d => d.toISOString());
			if (schema.pattern)
				return fc
					.stringMatching(new RegExp(schema.pattern))
					.filter(s => s.length >= min && s.length <= (schema.maxLength ?? Infinity));
			return fc.string({ unit: "grapheme", minLength: min, maxLength: max });
		}
		case "integer": {
			const min = schema.minimum ?? -1e6;
			// Mostly near the minimum when unbounded above, as real clients ask (page 2, not page 900000).
			const small = fc.integer({ min, max: schema.maximum ?? min + 100 });
			return fc.oneof(
				{ arbitrary: small, weight: 3 },
				fc.integer({ min, max: schema.maximum ?? 1e6 })
			);
		}
		case "number":
			return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
		case "boolean":
			return fc.boolean();
		case "array": {
			const item = fromSchema(schema.items ?? {}, hint);
			const opts = {
				minLength: schema.minItems ?? 0,
				maxLength: Math.max(schema.minItems ?? 0, 4)
			};
			return schema.uniqueItems ? fc.uniqueArray(item, opts) : fc.array(item, opts);
		}
		case "object": {
			const props = Object.entries(schema.properties ?? {});
			const model = Object.fromEntries(
				props.map(([name, s]) => [name, withHint(fromSchema(s, hint), hint?.(name))])
			);
			return fc.record(model, { requiredKeys: schema.required ?? [] });
		}
		default:
			return fc.jsonValue({ maxDepth: 2 });
	}
}

const withHint = (arb: fc.Arbitrary<unknown>, hint?: fc.Arbitrary<unknown>) =>
	hint ? fc.oneof({ arbitrary: hint, weight: 3 }, { arbitrary: arb, weight: 1 }) : arb;

// Values of each JSON type, for the wrong-type mutation.
const BY_TYPE: Record<string, fc.Arbitrary<unknown>> = {
	string: fc.oneof(fc.string(), fc.constantFrom("1", "true", "null", "")),
	integer: fc.integer(),
	number: fc.double({ noNaN: true, noDefaultInfinity: true }),
	boolean: fc.boolean(),
	array: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
	object: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 })
};
const wrongType = (schema: Schema) => {
	const own = Array.isArray(schema.type) ? schema.type : [schema.type ?? ""];
	const others = Object.keys(BY_TYPE).filter(
		t => !own.includes(t) && !(t === "integer" && own.includes("number"))
	);
	return fc.constantFrom(...others).chain(t => BY_TYPE[t]);
};

const BOUNDARY_NUMBERS = [
	-1, 0, 1, 99, 100, 101, 0.5, 1.5, -0, 2147483647, 2147483648, 4294967296, 9007199254740992,
	9007199254740994, -9007199254740992, 1e21, 1e308, -1e308, 5e-324
];
const boundary = (schema: Schema) => {
	const near = [schema.minimum, schema.maximum]
		.filter((n): n is number => n !== undefined)
		.flatMap(n => [n - 1, n, n + 1]);
	const lengths = [schema.minLength, schema.maxLength]
		.filter((n): n is number => n !== undefined)
		.flatMap(n => [n - 1, n, n + 1]);
	if (lengths.length)
		return fc.constantFrom(...lengths.filter(n => n >= 0)).map(n => "a".repeat(n));
	return fc.constantFrom(...near, ...BOUNDARY_NUMBERS);
};

/** 200..max UTF-16 units of a repeated grapheme (a cut may leave a lone surrogate, which is fine here). */
const longString = (max: number) =>
	fc
		.tuple(
			fc.string({ unit: "grapheme", minLength: 1, maxLength: 3 }),
			fc.integer({ min: 200, max })
		)
		.map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n));
// Long enough to hit length limits, short enough that the URL stays under Node's 16 KiB header limit.
const longText = longString(20000);
const longUrlPart = longString(1200);

/** Strings that tend to break parsers, normalisers, stores and queries. */
const ODD_STRINGS = [
	"",
	" ",
	"\u0000",
	"\u200b",
	"\u00ad",
	"\u202e",
	"\ufeff",
	"\ud800",
	"e\u0301",
	"Ａｄｍｉｎ",
	"🛒🛒",
	"\r\n",
	"null",
	"undefined",
	"[object Object]",
	"__proto__",
	'{"$gt":""}',
	"' OR '1'='1",
	"../../etc/passwd",
	"%00",
	"%zz",
	"<script>"
];
const unicode = fc.oneof(
	fc.constantFrom(...ODD_STRINGS),
	fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
	fc.string({ unit: "grapheme-composite", minLength: 1, maxLength: 20 })
);

/** Path segments decoders refuse or misread: sent as they are. */
const RAW_SEGMENTS = "% %zz %E0%A4%A %C0%AF %ff %00 %2e%2e ..%2F.. %252e a%2Fb %u0041 %%".split(
	" "
);

const EXTRA_FIELDS = "roles __proto__ constructor isAdmin id _id price $where userId status".split(
	" "
);

const MALFORMED_JSON = [
	"{",
	'{"a":',
	"{'a':1}",
	"[1,]",
	"\u0000",
	"nul",
	'{"a":1}{"b":2}',
	"\ufeff{}"
];

/** 1 MiB and a bit: over the documented body limit. */
const OVERSIZE = "x".repeat(1024 * 1024 + 16);

const BAD_TOKENS = [
	"Bearer x",
	"Bearer ",
	"Bearer",
	"Basic YWRtaW46YWRtaW4=",
	"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsInJvbGVzIjpbImFkbWluIl19.",
	"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
	`Bearer ${"a".repeat(4000)}`
];

/** Who sends an operation's requests, by weight: mostly whom it is for, sometimes who it is not for. */
const PERSONAS: Record<Operation["access"], Record<Persona, number>> = {
	public: { anonymous: 6, customer: 2, admin: 1 },
	user: { customer: 6, admin: 2, anonymous: 1 },
	admin: { admin: 6, customer: 1, anonymous: 1 }
};

/** A path parameter is never empty: an empty segment is another route. */
const paramValue = (p: Param, hint?: fc.Arbitrary<unknown>) => {
	const min = Math.max(p.schema.minLength ?? 0, p.in === "query" ? 0 : 1);
	const max = Math.min(p.schema.maxLength ?? 64, 64);
	const arb =
		p.in === "header"
			? headerText(min, max)
			: fromSchema(p.in === "path" ? { ...p.schema, minLength: min } : p.schema);
	return withHint(arb, hint);
};

/** Every request the run may send for `op`: about a quarter to a half valid, the rest with one mutation. */
export function requestArbitrary(op: Operation, hints: Hints): fc.Arbitrary<FuzzRequest> {
	const hint = (name: string) => hints[`${op.id} ${name}`] ?? hints[name];
	const params = (where: Param["in"]) => op.params.filter(p => p.in === where);
	const section = (where: Param["in"]) =>
		fc.record(Object.fromEntries(params(where).map(p => [p.name, paramValue(p, hint(p.name))])), {
			requiredKeys: params(where)
				.filter(p => p.required)
				.map(p => p.name)
		}) as fc.Arbitrary<Record<string, unknown>>;
	const mediaTypes = Object.keys(op.body ?? {});
	const body = mediaTypes.length
		? fc.constantFrom(...mediaTypes).chain(type =>
				fc.record({
					type:
						type === "image/*"
							? fc.constantFrom("image/png", "image/gif", "image/jpeg", "image/webp")
							: fc.constant(type),
					value: withHint(fromSchema(op.body![type], hint), hint("body"))
				})
			)
		: fc.constant(undefined);
	const valid = fc.record({
		persona: fc.oneof(
			...Object.entries(PERSONAS[op.access]).map(([p, weight]) => ({
				arbitrary: fc.constant(p as Persona),
				weight
			}))
		),
		path: section("path"),
		query: section("query"),
		headers: section("header"),
		body
	});
	return fc.tuple(valid, mutation(op)).map(([v, mutate]) => {
		const req: FuzzRequest = {
			op,
			mutation: "valid",
			method: op.method,
			persona: v.persona,
			path: v.path,
			query: Object.entries(v.query),
			headers: v.headers as Record<string, string>,
			body: v.body
		};
		return mutate ? mutate(req) : req;
	});
}

type Mutate = (req: FuzzRequest) => FuzzRequest;

/** One change to a valid request, or none (undefined), chosen among those that apply to `op`. */
function mutation(op: Operation): fc.Arbitrary<Mutate | undefined> {
	const json = op.body?.["application/json"];
	const props = Object.entries(json?.properties ?? {});
	const required = json?.required ?? [];
	const pathParams = op.params.filter(p => p.in === "path");
	const queryParams = op.params.filter(p => p.in === "query");
	const headerParams = op.params.filter(p => p.in === "header" && p.required);
	const setField = (label: string, value: (s: Schema) => fc.Arbitrary<unknown>) =>
		fc.constantFrom(...props).chain(([name, s]) =>
			value(s).map((v): Mutate => r => ({
				...r,
				mutation: `body.${label} ${name}`,
				body: { type: "application/json", value: { ...(r.body?.value as object), [name]: v } }
			}))
		);
	const choices: Array<{ arbitrary: fc.Arbitrary<Mutate | undefined>; weight: number }> = [
		{ arbitrary: fc.constant(undefined), weight: 15 },
		{
			arbitrary: fc.constantFrom(...BAD_TOKENS).map((auth): Mutate => r => ({
				...r,
				mutation: "header.badToken",
				headers: { ...r.headers, Authorization: auth }
			})),
			weight: 2
		},
		{
			arbitrary: fc
				.oneof(headerText(1, 200), fc.constantFrom(" a b ", "\t", "é\u00ff"))
				.map((id): Mutate => r => ({
					...r,
					mutation: "header.requestId",
					headers: { ...r.headers, "X-Request-Id": id }
				})),
			weight: 1
		},
		{
			arbitrary: fc.constant<Mutate>(r => ({
				...r,
				mutation: "header.oversize",
				headers: { ...r.headers, "X-Fuzz-Padding": "p".repeat(20000) }
			})),
			weight: 1
		},
		{
			arbitrary: fc.boolean().map((named): Mutate => r => ({
				...r,
				mutation: named ? "method.OPTIONS preflight" : "method.OPTIONS",
				method: "OPTIONS",
				headers: named
					? {
							...r.headers,
							Origin: "http://127.0.0.1:9",
							"Access-Control-Request-Method": op.method
						}
					: r.headers
			})),
			weight: 2
		}
	];
	if (op.method === "GET")
		choices.push({
			arbitrary: fc.constant<Mutate>(r => ({ ...r, mutation: "method.HEAD", method: "HEAD" })),
			weight: 1
		});
	if (op.otherMethods.length)
		choices.push({
			arbitrary: fc
				.constantFrom(...op.otherMethods)
				.map((m): Mutate => r => ({ ...r, mutation: `method.${m}`, method: m })),
			weight: 1
		});
	if (json && props.length) {
		choices.push(
			{ arbitrary: setField("null", () => fc.constant(null)), weight: 4 },
			{ arbitrary: setField("wrongType", wrongType), weight: 3 },
			{ arbitrary: setField("boundary", boundary), weight: 3 },
			{ arbitrary: setField("longString", () => longText), weight: 1 },
			{ arbitrary: setField("unicode", () => unicode), weight: 2 },
			{
				arbitrary: fc.tuple(fc.constantFrom(...EXTRA_FIELDS), fc.jsonValue({ maxDepth: 2 })).map(
					// A computed key makes an own property, so even "__proto__" reaches the wire.
					([name, v]): Mutate =>
						r => ({
							...r,
							mutation: `body.extra ${name}`,
							body: { type: "application/json", value: { ...(r.body?.value as object), [name]: v } }
						})
				),
				weight: 2
			}
		);
		if (required.length)
			choices.push({
				arbitrary: fc.constantFrom(...required).map((name): Mutate => r => {
					const { [name]: _dropped, ...rest } = (r.body?.value ?? {}) as Record<string, unknown>;
					return {
						...r,
						mutation: `body.missing ${name}`,
						body: { type: "application/json", value: rest }
					};
				}),
				weight: 2
			});
	}
	if (op.body) {
		choices.push(
			{
				arbitrary: fc
					.constantFrom<unknown>([], "text", 42, null, true, {}, [{}], {
						a: { b: { c: { d: [[[]]] } } }
					})
					.map((v): Mutate => r => ({
						...r,
						mutation: "body.shape",
						body: { type: "application/json", value: v }
					})),
				weight: 1
			},
			{
				arbitrary: fc.constantFrom(...MALFORMED_JSON).map((raw): Mutate => r => ({
					...r,
					mutation: "body.malformedJson",
					body: { type: "application/json", raw }
				})),
				weight: 1
			},
			{
				arbitrary: fc
					.constantFrom(
						undefined,
						"text/plain",
						"application/x-www-form-urlencoded",
						"application/json; charset=latin1",
						"multipart/form-data"
					)
					.map((type): Mutate => r => ({
						...r,
						mutation: `body.contentType ${type ?? "(none)"}`,
						body: { type, value: r.body?.value ?? {}, json: true }
					})),
				weight: 1
			},
			{
				arbitrary: fc.constant<Mutate>(r => ({ ...r, mutation: "body.absent", body: undefined })),
				weight: 1
			},
			{
				// Chunked: no Content-Length announces the size, so only counting the bytes catches it.
				arbitrary: fc
					.tuple(fc.boolean(), fc.constantFrom<string | undefined>("", "text/plain", undefined))
					.map(([chunked, other]): Mutate => r => {
						const type = other === "" ? r.body?.type : other;
						return {
							...r,
							mutation: `body.oversize${chunked ? " chunked" : ""} ${type ?? "(no type)"}`,
							body: { type, raw: OVERSIZE, chunked }
						};
					}),
				weight: 1
			}
		);
	}
	if (pathParams.length) {
		const pick = fc.constantFrom(...pathParams.map(p => p.name));
		choices.push(
			{
				arbitrary: fc
					.tuple(pick, fc.constantFrom(...RAW_SEGMENTS))
					.map(([name, raw]): Mutate => r => ({
						...r,
						mutation: `path.malformed ${name}`,
						path: { ...r.path, [name]: new Raw(raw) }
					})),
				weight: 3
			},
			{
				arbitrary: fc
					.tuple(
						pick,
						fc.oneof(
							unicode.filter(v => v !== ""),
							longUrlPart
						)
					)
					.map(([name, v]): Mutate => r => ({
						...r,
						mutation: `path.odd ${name}`,
						path: { ...r.path, [name]: v }
					})),
				weight: 2
			}
		);
	}
	const queryValue = fc.oneof(
		fc.constantFrom("abc", "", "1.5", "-1", "0", "1e21", "true", "null", "[]", "101"),
		unicode,
		longUrlPart
	);
	choices.push(
		{
			arbitrary: fc
				.tuple(
					queryParams.length
						? fc.constantFrom(...queryParams.map(p => p.name))
						: fc.constantFrom("page", "q"),
					queryValue
				)
				.map(([name, v]): Mutate => r => ({
					...r,
					mutation: `query.odd ${name}`,
					query: [...r.query.filter(([k]) => k !== name), [name, v]]
				})),
			weight: queryParams.length ? 4 : 1
		},
		{
			arbitrary: fc
				.constantFrom(
					"page=1&page=2",
					"page[]=1",
					"price[$gt]=0",
					"query=%7B%7D",
					"sort[$ne]=x",
					"%zz=1",
					"q=%zz",
					"q=%E0%A4%A",
					"a=1&&&b",
					"pageSize=1e2"
				)
				.map((raw): Mutate => r => ({
					...r,
					mutation: `query.raw ${raw}`,
					query: [...r.query, ["", new Raw(raw)]]
				})),
			weight: queryParams.length ? 2 : 1
		}
	);
	if (headerParams.length) {
		choices.push({
			arbitrary: fc
				.tuple(
					fc.constantFrom(...headerParams.map(p => p.name)),
					fc.constantFrom(undefined, "", " ", "k".repeat(256), "a b", "é\u00ff")
				)
				.map(([name, v]): Mutate => r => {
					const { [name]: _dropped, ...rest } = r.headers;
					return {
						...r,
						mutation: `header.${name} ${v === undefined ? "missing" : JSON.stringify(v.slice(0, 8))}`,
						headers: v === undefined ? rest : { ...rest, [name]: v }
					};
				}),
			weight: 2
		});
	}
	return fc.oneof(...choices);
}
