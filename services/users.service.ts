/**
 * Users and their sessions: registration (throttled per client address), login (throttled per account, per device
 * token and per client address, see `loginGate`), rotating refresh tokens in families (a reused token revokes its
 * whole family), the caller's profile, and the admin's view. The only writer of the `users` and `refresh_tokens`
 * collections and of the login and registration counters.
 */
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import { type AppConfig, configOf } from "../config";
import {
	ConflictError,
	TooManyRequestsError,
	NotFoundError,
	UnauthorizedError,
	UnprocessableError
} from "../lib/errors";
import { PAGE_PARAMS, type Page, pageOf, pageWindow } from "../lib/pagination";
import { hashPassword, verifyPassword } from "../lib/password";
import { EMAIL_RULE, enumRule } from "../lib/validation";
import { bindToScope } from "../lib/request-context";
import {
	type KeyPair,
	hashRefreshToken,
	newRefreshToken,
	signAccessToken,
	signDeviceToken,
	verifyDeviceToken
} from "../lib/tokens";
import { loadKeys } from "../adapters/keys";
import { ADDRESS_FIELDS, type ShippingAddress } from "./orders/address";
import { DbMixin, type DbServiceThis } from "../mixins/db.mixin";
import { type DbAdapter, isDuplicateKeyError } from "../adapters/store";
import { type RateLimitStore, RateLimiterRes, resolveRateLimitStore } from "../adapters/rate-limit";
import type { RateLimiterAbstract } from "rate-limiter-flexible";
import { METRIC, USER_AUTH_EVENTS } from "../lib/metric-names";
import { OUTBOX_INDEX, OutboxMixin, outboxEvent, outboxFields } from "../mixins/outbox.mixin";
import type { AppMeta, AuthUser } from "../types/meta";
import type { AppAction, Role } from "../types/moleculer-ext";

/** A user as stored. */
interface UserDoc {
	_id: string;
	email: string;
	name: string;
	passwordHash: string;
	roles: Role[];
	disabled: boolean;
	createdAt: string;
	updatedAt: string;
}

/** A user as clients see it: never a hash. */
export interface User {
	id: string;
	email: string;
	name: string;
	roles: Role[];
	createdAt: string;
	disabled?: boolean;
}

interface RefreshTokenDoc {
	_id: string;
	tokenHash: string;
	familyId: string;
	userId: string;
	expiresAt: Date;
	usedAt: number | null;
	revokedAt: number | null;
	createdAt: number;
}

export interface TokenBundle {
	user: User;
	accessToken: string;
	refreshToken: string;
	tokenType: "Bearer";
	expiresIn: number;
	/** Login only: proof for the next logins from this client (OWASP's device cookie). */
	deviceToken?: string;
}

/** Which counters a login attempt is judged by, and charged to when it fails. */
interface LoginGate {
	/** The device token's id when the client proved an earlier login to this account with it. */
	device: string | null;
	keys: Array<{ limiter: RateLimiterAbstract; key: string }>;
	/** Untrusted clients: the account and the address, to count each account once per address. */
	pair: string | null;
}

interface RegisterParams {
	email: string;
	password: string;
	name: string;
}
interface LoginParams {
	email: string;
	password: string;
	deviceToken?: string;
}
interface RefreshParams {
	refreshToken: string;
}
interface UpdateMeParams {
	name?: string;
	password?: string;
	currentPassword?: string;
}
interface ListParams {
	page: number;
	pageSize: number;
}
interface AdminUpdateParams {
	id: string;
	roles?: Role[];
	disabled?: boolean;
}

type AuthEvent = (typeof USER_AUTH_EVENTS)[number];

interface UsersMethods {
	toUser(doc: UserDoc, withAdminFields?: boolean): User;
	issueBundle(doc: UserDoc, familyId?: string): Promise<TokenBundle>;
	revokeFamilies(query: Partial<RefreshTokenDoc>): Promise<number>;
	loginGate(
		email: string,
		doc: UserDoc | null,
		deviceToken: string | undefined,
		ip: string
	): Promise<LoginGate>;
	checkGate(gate: LoginGate): Promise<void>;
	chargeFailure(gate: LoginGate): Promise<void>;
	throttle(retryAfterMs: number, message: string): Error;
	audit(event: AuthEvent, fields?: Record<string, unknown>): void;
	bootstrapAdmin(): Promise<void>;
	findByEmail(email: string): Promise<UserDoc | null>;
	relayOutbox(id?: string): Promise<number>;
}

interface UsersVars {
	keys: KeyPair;
	auth: AppConfig["auth"];
	stores: { tokens: DbAdapter };
	rateLimits: RateLimitStore;
	limiters: Record<"account" | "device" | "pair" | "address" | "register", RateLimiterAbstract>;
}

type UsersThis = Service & DbServiceThis & UsersVars & UsersMethods;

/** A customer's saved address (API.md "Addresses"): a checkout address with an optional label. */
export interface SavedAddress extends ShippingAddress {
	id: string;
	label?: string;
	createdAt: string;
	updatedAt: string;
}

interface AddressDoc extends Omit<SavedAddress, "id"> {
	_id: string;
	userId: string;
}

function toAddress(doc: AddressDoc): SavedAddress {
	const { _id, userId: _owner, ...rest } = doc;
	return { id: _id, ...rest };
}

const EMAIL = EMAIL_RULE;
const PASSWORD = { type: "string", min: 8, max: 128 } as const;
const NAME = { type: "string", trim: true, min: 1, max: 100 } as const;
const REFRESH_TOKEN = { type: "string", min: 16, max: 128 } as const;
const LABEL = { type: "string", trim: true, min: 1, max: 50 } as const;
const ADDRESS_ID = { type: "string", min: 1, max: 64 } as const;
/** Saved addresses per customer: bounds the list and the store. */
const MAX_ADDRESSES = 20;
const ROLES = {
	type: "array",
	items: enumRule("role", ["customer", "admin"]),
	min: 1,
	max: 2,
	unique: true
} as const;

const ROLE_CUSTOMER: Role = "customer";
/** Where the embedded mode writes the admin password it generated, under DATA_DIR. */
export const ADMIN_PASSWORD_FILE = "admin-password.txt";

/** Writes `email` and `password` to DATA_DIR/admin-password.txt, readable by its owner only (0600); its path. */
function writeAdminPassword(dataDir: string, email: string, password: string): string {
	const file = path.join(dataDir, ADMIN_PASSWORD_FILE);
	fs.mkdirSync(dataDir, { recursive: true });
	// A file left by an earlier data directory may have other modes: the new one replaces it.
	fs.rmSync(file, { force: true });
	fs.writeFileSync(file, `email=${email}\npassword=${password}\n`, { mode: 0o600, flag: "wx" });
	return file;
}

/** The same answer for an unknown email, a wrong password and a disabled account. */
const BAD_CREDENTIALS = "Invalid email or password";
const EMBEDDED_ADMIN_EMAIL = "admin@flashmart.local";

const actions = {
	/** Creates a customer account and signs it in. */
	register: {
		params: { $$strict: "remove", email: EMAIL, password: PASSWORD, name: NAME },
		async handler(this: UsersThis, ctx: Context<RegisterParams, AppMeta>): Promise<TokenBundle> {
			// Each registration costs a 16 MiB scrypt: a client address gets REGISTER_MAX_PER_WINDOW of them.
			const spent = await this.limiters.register
				.consume(ctx.meta.clientIp ?? "unknown")
				.catch((res: unknown) => res);
			if (
				spent instanceof RateLimiterRes &&
				spent.consumedPoints > this.auth.registerMaxPerWindow
			) {
				this.audit("register_throttled");
				throw this.throttle(spent.msBeforeNext, "Too many registrations, try again later");
			}
			const now = new Date().toISOString();
			const _id = randomUUID().replace(/-/g, "");
			let doc: UserDoc;
			try {
				// The account and its users.registered event are one write (the outbox).
				doc = (await this.adapter.insert({
					_id,
					email: ctx.params.email,
					name: ctx.params.name,
					passwordHash: await hashPassword(ctx.params.password),
					roles: [ROLE_CUSTOMER],
					disabled: false,
					createdAt: now,
					updatedAt: now,
					...outboxFields([
						outboxEvent("users.registered", { userId: _id, email: ctx.params.email })
					])
				})) as UserDoc;
			} catch (err) {
				if (isDuplicateKeyError(err)) {
					throw new ConflictError("EMAIL_TAKEN", "An account with this email already exists", {
						field: "email"
					});
				}
				throw err;
			}
			bindToScope({ userId: doc._id });
			this.audit("registered", { userId: doc._id });
			void this.relayOutbox(doc._id).catch(() => undefined);
			ctx.meta.$statusCode = 201;
			ctx.meta.$location = "/api/users/me";
			return this.issueBundle(doc);
		}
	},

	/**
	 * Exchanges email and password for tokens and a device token. Throttled per account and per client address for
	 * clients without a device token of the account, per device token for the others (`loginGate`).
	 */
	login: {
		params: {
			$$strict: "remove",
			email: EMAIL,
			password: { type: "string", min: 1, max: 1024 },
			deviceToken: { type: "string", min: 1, max: 4096, optional: true }
		},
		async handler(this: UsersThis, ctx: Context<LoginParams, AppMeta>): Promise<TokenBundle> {
			const { email } = ctx.params;
			const doc = await this.findByEmail(email);
			const gate = await this.loginGate(
				email,
				doc,
				ctx.params.deviceToken ?? ctx.meta.deviceToken,
				ctx.meta.clientIp ?? "unknown"
			);
			await this.checkGate(gate);

			const ok = await verifyPassword(ctx.params.password, doc?.passwordHash);
			if (!doc || !ok || doc.disabled) {
				await this.chargeFailure(gate);
				this.audit("login_failed", {
					email,
					reason: !doc ? "unknown" : ok ? "disabled" : "password",
					trustedDevice: gate.device !== null
				});
				throw new UnauthorizedError("INVALID_CREDENTIALS", BAD_CREDENTIALS);
			}
			// The account's (or this device's) count starts again; the address keeps its count, so a sprayer who
			// knows one password cannot wipe what the others cost.
			await gate.keys[0].limiter.delete(gate.keys[0].key).catch(() => undefined);
			bindToScope({ userId: doc._id });
			this.audit("login_succeeded", { userId: doc._id, trustedDevice: gate.device !== null });
			const bundle = await this.issueBundle(doc);
			bundle.deviceToken = signDeviceToken(doc._id, this.keys, this.auth);
			return bundle;
		}
	},

	/** Rotates a refresh token: each works once; a reused one revokes its whole family. */
	refresh: {
		params: { $$strict: "remove", refreshToken: REFRESH_TOKEN },
		async handler(this: UsersThis, ctx: Context<RefreshParams, AppMeta>): Promise<TokenBundle> {
			const invalid = () =>
				new UnauthorizedError("INVALID_TOKEN", "Invalid or expired refresh token");
			const tokenHash = hashRefreshToken(ctx.params.refreshToken);
			const token = (await this.stores.tokens.findOne({ tokenHash })) as RefreshTokenDoc | null;
			if (!token) throw invalid();
			bindToScope({ userId: token.userId });

			// Claim it with one conditional write: of two racing uses, exactly one wins.
			const claimed =
				token.usedAt === null && token.revokedAt === null
					? await this.stores.tokens.updateMany(
							{ tokenHash, usedAt: null, revokedAt: null },
							{ $set: { usedAt: Date.now() } }
						)
					: 0;
			if (claimed !== 1) {
				if (token.revokedAt === null || token.usedAt !== null) {
					const revoked = await this.revokeFamilies({ familyId: token.familyId });
					this.audit("token_reuse_detected", {
						userId: token.userId,
						familyId: token.familyId,
						revoked
					});
				}
				throw invalid();
			}
			if (new Date(token.expiresAt).getTime() <= Date.now()) throw invalid();

			const doc = (await this.adapter.findById(token.userId)) as UserDoc | null;
			if (!doc || doc.disabled) {
				await this.revokeFamilies({ familyId: token.familyId });
				throw invalid();
			}
			this.audit("token_refreshed", { userId: doc._id });
			return this.issueBundle(doc, token.familyId);
		}
	},

	/** Ends a session: its refresh token (and its family) stop working. Always 204, known token or not. */
	logout: {
		params: { $$strict: "remove", refreshToken: REFRESH_TOKEN },
		async handler(this: UsersThis, ctx: Context<RefreshParams, AppMeta>): Promise<null> {
			const token = (await this.stores.tokens.findOne({
				tokenHash: hashRefreshToken(ctx.params.refreshToken)
			})) as RefreshTokenDoc | null;
			if (token) {
				await this.revokeFamilies({ familyId: token.familyId });
				this.audit("logout", { userId: token.userId });
			}
			ctx.meta.$statusCode = 204;
			return null;
		}
	},

	/** The caller's profile. */
	me: {
		permissions: "authenticated",
		params: { $$strict: "remove" },
		async handler(this: UsersThis, ctx: Context<object, AppMeta>): Promise<User> {
			const doc = (await this.adapter.findById(ctx.meta.user!.id)) as UserDoc | null;
			if (!doc) throw new NotFoundError("User");
			return this.toUser(doc);
		}
	},

	/** Changes the caller's name and/or password (the current password is required for the latter). */
	updateMe: {
		permissions: "authenticated",
		params: {
			$$strict: "remove",
			name: { ...NAME, optional: true },
			password: { ...PASSWORD, optional: true },
			currentPassword: { type: "string", min: 1, max: 1024, optional: true }
		},
		async handler(this: UsersThis, ctx: Context<UpdateMeParams, AppMeta>): Promise<User> {
			const id = ctx.meta.user!.id;
			const doc = (await this.adapter.findById(id)) as UserDoc | null;
			if (!doc) throw new NotFoundError("User");
			const set: Partial<UserDoc> = {};
			if (ctx.params.name !== undefined) set.name = ctx.params.name;
			if (ctx.params.password !== undefined) {
				const current = ctx.params.currentPassword;
				if (!current || !(await verifyPassword(current, doc.passwordHash))) {
					throw new UnprocessableError(
						"VALIDATION_ERROR",
						"The current password is required and must match",
						[
							{
								field: "currentPassword",
								type: "invalid",
								message: "The current password does not match"
							}
						]
					);
				}
				set.passwordHash = await hashPassword(ctx.params.password);
			}
			if (Object.keys(set).length === 0) return this.toUser(doc);
			set.updatedAt = new Date().toISOString();
			const updated = (await this.adapter.updateById(id, { $set: set })) as UserDoc;
			if (set.passwordHash) {
				// Every other session ends with the old password.
				await this.revokeFamilies({ userId: id });
				this.audit("password_changed", { userId: id });
			}
			return this.toUser(updated);
		}
	},

	/** Admin: every user, a page at a time, newest first. */
	list: {
		permissions: ["admin"],
		params: { $$strict: "remove", ...PAGE_PARAMS },
		async handler(this: UsersThis, ctx: Context<ListParams, AppMeta>): Promise<Page<User>> {
			const { page, pageSize } = ctx.params;
			const [docs, total] = await Promise.all([
				this.adapter.find({ ...pageWindow(page, pageSize), sort: ["-createdAt"] }),
				this.adapter.count()
			]);
			return pageOf(
				(docs as UserDoc[]).map(d => this.toUser(d, true)),
				total,
				page,
				pageSize
			);
		}
	},

	/** Admin: grants or removes roles, disables or enables an account. */
	update: {
		permissions: ["admin"],
		params: {
			$$strict: "remove",
			id: { type: "string", min: 1, max: 64 },
			roles: { ...ROLES, optional: true },
			disabled: { type: "boolean", optional: true }
		},
		async handler(this: UsersThis, ctx: Context<AdminUpdateParams, AppMeta>): Promise<User> {
			const { id, roles, disabled } = ctx.params;
			const doc = (await this.adapter.findById(id)) as UserDoc | null;
			if (!doc) throw new NotFoundError("User");
			if (id === ctx.meta.user!.id && (disabled === true || (roles && !roles.includes("admin")))) {
				throw new UnprocessableError(
					"VALIDATION_ERROR",
					"Admins cannot disable or demote themselves",
					[
						{
							field: roles ? "roles" : "disabled",
							type: "forbidden",
							message: "Not on your own account"
						}
					]
				);
			}
			const set: Partial<UserDoc> = { updatedAt: new Date().toISOString() };
			if (roles) set.roles = roles;
			if (disabled !== undefined) set.disabled = disabled;
			const updated = (await this.adapter.updateById(id, { $set: set })) as UserDoc;
			if (roles && roles.join() !== doc.roles.join()) {
				// Tokens carry roles: sessions must sign in again to see the change.
				await this.revokeFamilies({ userId: id });
				this.audit("role_changed", { targetUserId: id, from: doc.roles, to: roles });
			}
			if (disabled !== undefined && disabled !== doc.disabled) {
				if (disabled) await this.revokeFamilies({ userId: id });
				this.audit(disabled ? "user_disabled" : "user_enabled", { targetUserId: id });
			}
			return this.toUser(updated, true);
		}
	},

	/** The caller's saved addresses, oldest first. */
	listAddresses: {
		permissions: "authenticated",
		params: { $$strict: "remove" },
		async handler(this: UsersThis, ctx: Context<object, AppMeta>): Promise<SavedAddress[]> {
			const docs = (await this.stores.addresses.find({
				query: { userId: ctx.meta.user!.id },
				sort: ["createdAt", "_id"]
			})) as AddressDoc[];
			return docs.map(toAddress);
		}
	},

	/** Saves an address for the caller (at most MAX_ADDRESSES), usable at checkout by its id. */
	addAddress: {
		permissions: "authenticated",
		params: { $$strict: "remove", ...ADDRESS_FIELDS, label: { ...LABEL, optional: true } },
		async handler(
			this: UsersThis,
			ctx: Context<Omit<SavedAddress, "id" | "createdAt" | "updatedAt">, AppMeta>
		): Promise<SavedAddress> {
			const userId = ctx.meta.user!.id;
			// A bound on one customer's records, not a limit that must hold exactly under racing requests.
			if ((await this.stores.addresses.count({ query: { userId } })) >= MAX_ADDRESSES) {
				throw new UnprocessableError(
					"VALIDATION_ERROR",
					`At most ${MAX_ADDRESSES} saved addresses`,
					[
						{
							field: "addresses",
							type: "arrayMax",
							message: `At most ${MAX_ADDRESSES} saved addresses`
						}
					]
				);
			}
			const at = new Date().toISOString();
			const doc: AddressDoc = {
				...ctx.params,
				_id: randomUUID().replace(/-/g, ""),
				userId,
				createdAt: at,
				updatedAt: at
			};
			await this.stores.addresses.insert(doc);
			ctx.meta.$statusCode = 201;
			return toAddress(doc);
		}
	},

	/** Changes one of the caller's addresses (someone else's is 404). */
	updateAddress: {
		permissions: "authenticated",
		params: {
			$$strict: "remove",
			id: ADDRESS_ID,
			...Object.fromEntries(
				Object.entries({ ...ADDRESS_FIELDS, label: LABEL }).map(([k, v]) => [
					k,
					{ ...v, optional: true }
				])
			)
		},
		async handler(
			this: UsersThis,
			ctx: Context<Partial<SavedAddress> & { id: string }, AppMeta>
		): Promise<SavedAddress> {
			const { id, ...change } = ctx.params;
			const userId = ctx.meta.user!.id;
			const updatedAt = new Date().toISOString();
			const written = await this.stores.addresses.updateMany(
				{ _id: id, userId },
				{ $set: { ...change, updatedAt } }
			);
			if (written !== 1) throw new NotFoundError("Address");
			return toAddress((await this.stores.addresses.findById(id)) as AddressDoc);
		}
	},

	/** Deletes one of the caller's addresses (204; someone else's is 404). Orders keep their copy. */
	removeAddress: {
		permissions: "authenticated",
		params: { $$strict: "remove", id: ADDRESS_ID },
		async handler(this: UsersThis, ctx: Context<{ id: string }, AppMeta>): Promise<null> {
			const removed = await this.stores.addresses.removeMany({
				_id: ctx.params.id,
				userId: ctx.meta.user!.id
			});
			if (removed !== 1) throw new NotFoundError("Address");
			ctx.meta.$statusCode = 204;
			return null;
		}
	},

	/** Internal (orders' checkout, with the customer's meta): one of the caller's addresses, or null. */
	address: {
		params: { $$strict: "remove", id: ADDRESS_ID },
		async handler(
			this: UsersThis,
			ctx: Context<{ id: string }, AppMeta>
		): Promise<SavedAddress | null> {
			const doc = (await this.stores.addresses.findById(ctx.params.id)) as AddressDoc | null;
			return doc && doc.userId === ctx.meta.user?.id ? toAddress(doc) : null;
		}
	}
} satisfies Record<string, AppAction<UsersThis>>;

export function createUsersService(
	cfg: AppConfig
): ServiceSchema<ServiceSettingSchema, UsersMethods, DbServiceThis & UsersVars> {
	return {
		name: "users",
		mixins: [
			DbMixin(cfg, {
				collection: "users",
				indexes: [
					{ fields: { email: 1 }, unique: true },
					{ fields: { createdAt: -1 } },
					OUTBOX_INDEX
				],
				stores: {
					addresses: {
						collection: "addresses",
						indexes: [{ fields: { userId: 1, createdAt: 1 } }]
					},
					tokens: {
						collection: "refresh_tokens",
						indexes: [
							{ fields: { tokenHash: 1 }, unique: true },
							{ fields: { familyId: 1 } },
							{ fields: { userId: 1 } },
							{ fields: { expiresAt: 1 }, expireAfterSeconds: 0 }
						]
					}
				}
			}),
			OutboxMixin(cfg)
		],
		actions,

		methods: {
			toUser(doc: UserDoc, withAdminFields = false): User {
				// An earlier version stored `null` for optional fields: read them as the documented schema says.
				const user: User = {
					id: doc._id,
					email: doc.email,
					name: typeof doc.name === "string" ? doc.name : "",
					roles: Array.isArray(doc.roles) && doc.roles.length > 0 ? doc.roles : [ROLE_CUSTOMER],
					createdAt: doc.createdAt
				};
				if (withAdminFields) user.disabled = !!doc.disabled;
				return user;
			},

			async findByEmail(this: UsersThis, email: string): Promise<UserDoc | null> {
				return (await this.adapter.findOne({ email })) as UserDoc | null;
			},

			/** Signs an access token and stores a new refresh token in `familyId` (a new family when absent). */
			async issueBundle(this: UsersThis, doc: UserDoc, familyId?: string): Promise<TokenBundle> {
				const authUser: AuthUser = { id: doc._id, email: doc.email, roles: doc.roles };
				const refreshToken = newRefreshToken();
				const now = Date.now();
				await this.stores.tokens.insert({
					tokenHash: hashRefreshToken(refreshToken),
					familyId: familyId ?? randomUUID(),
					userId: doc._id,
					expiresAt: new Date(now + this.auth.refreshTokenTtl * 1000),
					usedAt: null,
					revokedAt: null,
					createdAt: now
				});
				return {
					user: this.toUser(doc),
					accessToken: signAccessToken(authUser, this.keys, this.auth),
					refreshToken,
					tokenType: "Bearer",
					expiresIn: this.auth.accessTokenTtl
				};
			},

			/** Revokes every refresh token matching `query` (a family, or all of a user's). */
			async revokeFamilies(this: UsersThis, query: Partial<RefreshTokenDoc>): Promise<number> {
				const count = await this.stores.tokens.updateMany(
					{ ...query, revokedAt: null },
					{ $set: { revokedAt: Date.now() } }
				);
				if (count > 0) this.audit("token_family_revoked", { ...query, tokens: count });
				return count;
			},

			/**
			 * OWASP's device-cookie design. A client holding a valid device token of this account (handed out by an
			 * earlier successful login) is judged only by that token's failures: neither failures of other clients on
			 * the account nor failures of other accounts from its address lock it out. Every other client is judged by
			 * the account's failures (brute force from one or many addresses) and by its address's failures over all
			 * accounts (password spraying). A device token that reached the failure limit counts as none.
			 */
			async loginGate(
				this: UsersThis,
				email: string,
				doc: UserDoc | null,
				deviceToken: string | undefined,
				ip: string
			): Promise<LoginGate> {
				const device = deviceToken ? verifyDeviceToken(deviceToken, this.keys, this.auth) : null;
				if (device && doc && device.userId === doc._id) {
					const spent = await this.limiters.device.get(device.id).catch(() => null);
					if (!spent || spent.consumedPoints < this.auth.loginMaxFailures) {
						return {
							device: device.id,
							keys: [{ limiter: this.limiters.device, key: device.id }],
							pair: null
						};
					}
				}
				return {
					device: null,
					keys: [
						{ limiter: this.limiters.account, key: email },
						{ limiter: this.limiters.address, key: ip }
					],
					pair: `${ip}|${email}`
				};
			},

			/**
			 * A failure counts against the gate's first key (account or device token) every time, and against the
			 * address once per account in the address window: the address limit counts the accounts that failed
			 * from there (spraying), so one user mistyping a password again and again does not bring it closer.
			 */
			async chargeFailure(this: UsersThis, gate: LoginGate): Promise<void> {
				const [first, address] = gate.keys;
				const charges: Array<Promise<unknown>> = [first.limiter.consume(first.key)];
				if (address && gate.pair) {
					charges.push(
						this.limiters.pair.consume(gate.pair).then(res => {
							if (res.consumedPoints === 1) return address.limiter.consume(address.key);
							return undefined;
						})
					);
				}
				await Promise.all(charges.map(p => p.catch(() => undefined)));
			},

			/** 429 when a counter of the gate has reached its limit (the attempt is not even checked then). */
			async checkGate(this: UsersThis, gate: LoginGate): Promise<void> {
				const limits = new Map<RateLimiterAbstract, number>([
					[this.limiters.account, this.auth.loginMaxFailures],
					[this.limiters.device, this.auth.loginMaxFailures],
					[this.limiters.address, this.auth.loginAddressMaxAccounts]
				]);
				for (const { limiter, key } of gate.keys) {
					const res = await limiter.get(key).catch(() => null);
					if (!res || res.consumedPoints < (limits.get(limiter) ?? 0)) continue;
					const what =
						limiter === this.limiters.address
							? "address"
							: limiter === this.limiters.device
								? "device"
								: "email";
					this.audit("login_throttled", { key: what });
					throw this.throttle(res.msBeforeNext, "Too many failed logins, try again later");
				}
			},

			/** The contract's 429, with the seconds to wait for the gateway's Retry-After. */
			throttle(this: UsersThis, retryAfterMs: number, message: string): Error {
				return new TooManyRequestsError(message, Math.max(1, Math.ceil(retryAfterMs / 1000)));
			},

			/** A structured security log line with the request id, and a count in flashmart_auth_events_total. */
			audit(this: UsersThis, event: AuthEvent, fields: Record<string, unknown> = {}) {
				this.logger.info(`audit: ${event}`, { audit: event, ...fields });
				this.broker.metrics.increment(METRIC.AUTH_EVENTS, { event });
			},

			/**
			 * ADMIN_EMAIL/ADMIN_PASSWORD create or update the admin at every start. The embedded mode without them
			 * creates admin@flashmart.local once with a generated password, written to DATA_DIR/admin-password.txt.
			 */
			async bootstrapAdmin(this: UsersThis): Promise<void> {
				let email = this.auth.adminEmail;
				let password = this.auth.adminPassword;
				if (!email || !password) {
					if (cfg.mode !== "embedded" || (await this.findByEmail(EMBEDDED_ADMIN_EMAIL))) return;
					email = EMBEDDED_ADMIN_EMAIL;
					password = randomBytes(12).toString("base64url");
					// Written to a file only its owner reads, never logged: the password must not travel to the log
					// store, and an operator who missed the start can still read it.
					const file = writeAdminPassword(cfg.dataDir, email, password);
					this.logger.info(
						`Embedded admin account ${email}: its generated password is in ${file}`,
						{
							adminPasswordFile: file
						}
					);
				}
				const now = new Date().toISOString();
				const passwordHash = await hashPassword(password);
				const update = async (existing: UserDoc) => {
					const roles: Role[] = existing.roles.includes("admin")
						? existing.roles
						: [...existing.roles, "admin"];
					await this.adapter.updateById(existing._id, {
						$set: { passwordHash, roles, disabled: false, updatedAt: now }
					});
				};
				const existing = await this.findByEmail(email);
				if (existing) return update(existing);
				try {
					await this.adapter.insert({
						email,
						name: "Administrator",
						passwordHash,
						roles: ["customer", "admin"],
						disabled: false,
						createdAt: now,
						updatedAt: now
					});
				} catch (err) {
					// Another users node created it at the same moment.
					if (!isDuplicateKeyError(err)) throw err;
					await update((await this.findByEmail(email))!);
				}
				this.logger.info(`Admin account ${email} is ready`);
			}
		},

		created(this: UsersThis) {
			this.auth = cfg.auth;
			this.keys = loadKeys(cfg);
			this.rateLimits = resolveRateLimitStore(cfg);
			const window = cfg.auth.loginFailureWindow;
			this.limiters = {
				// A counter may run past its limit (failures keep being counted); checkGate compares, never consume.
				account: this.rateLimits.limiter({ name: "login-account", points: 1e9, duration: window }),
				device: this.rateLimits.limiter({ name: "login-device", points: 1e9, duration: window }),
				pair: this.rateLimits.limiter({
					name: "login-pair",
					points: 1e9,
					duration: cfg.auth.loginAddressWindow
				}),
				address: this.rateLimits.limiter({
					name: "login-address",
					points: 1e9,
					duration: cfg.auth.loginAddressWindow
				}),
				register: this.rateLimits.limiter({
					name: "register-address",
					points: 1e9,
					duration: cfg.auth.registerWindow
				})
			};
			if (cfg.mode === "cluster" && this.rateLimits.kind === "memory") {
				this.logger.warn(
					"Login and registration counters are kept in this process (CACHER is not redis://): run one users node"
				);
			}
		},

		async started(this: UsersThis) {
			await this.bootstrapAdmin();
		},

		async stopped(this: UsersThis) {
			await this.rateLimits.close();
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createUsersService(configOf(broker));
