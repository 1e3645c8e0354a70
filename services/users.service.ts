/**
 * Users and their sessions: registration, login (throttled per email and per client address), rotating refresh
 * tokens in families (a reused token revokes its whole family), the caller's profile, and the admin's view.
 * The only writer of the `users`, `refresh_tokens` and `login_attempts` collections.
 */
import { randomBytes, randomUUID } from "node:crypto";
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
	MoleculerClientError,
	NotFoundError,
	UnauthorizedError,
	UnprocessableError
} from "../lib/errors";
import { PAGE_PARAMS, type Page, pageOf, pageWindow } from "../lib/pagination";
import { hashPassword, verifyPassword } from "../lib/password";
import { bindToScope } from "../lib/request-context";
import { type KeyPair, hashRefreshToken, newRefreshToken, signAccessToken } from "../lib/tokens";
import { loadKeys } from "../adapters/keys";
import { DbMixin, type DbServiceThis } from "../mixins/db.mixin";
import { type DbAdapter, isDuplicateKeyError } from "../adapters/store";
import { METRIC } from "../lib/metric-names";
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

interface AttemptDoc {
	_id: string;
	key: string;
	count: number;
	windowStart: number;
	expiresAt: Date;
}

export interface TokenBundle {
	user: User;
	accessToken: string;
	refreshToken: string;
	tokenType: "Bearer";
	expiresIn: number;
}

interface RegisterParams {
	email: string;
	password: string;
	name: string;
}
interface LoginParams {
	email: string;
	password: string;
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

type AuthEvent =
	| "registered"
	| "login_succeeded"
	| "login_failed"
	| "login_throttled"
	| "token_refreshed"
	| "token_reuse_detected"
	| "token_family_revoked"
	| "logout"
	| "password_changed"
	| "role_changed"
	| "user_disabled"
	| "user_enabled";

interface UsersMethods {
	toUser(doc: UserDoc, withAdminFields?: boolean): User;
	issueBundle(doc: UserDoc, familyId?: string): Promise<TokenBundle>;
	revokeFamilies(query: Partial<RefreshTokenDoc>): Promise<number>;
	checkThrottle(keys: string[]): Promise<void>;
	recordFailure(keys: string[]): Promise<void>;
	clearFailures(key: string): Promise<void>;
	audit(event: AuthEvent, fields?: Record<string, unknown>): void;
	bootstrapAdmin(): Promise<void>;
	findByEmail(email: string): Promise<UserDoc | null>;
	relayOutbox(id?: string): Promise<number>;
}

interface UsersVars {
	keys: KeyPair;
	auth: AppConfig["auth"];
	stores: { tokens: DbAdapter; attempts: DbAdapter };
}

type UsersThis = Service & DbServiceThis & UsersVars & UsersMethods;

const EMAIL = { type: "email", normalize: true, max: 254 } as const;
const PASSWORD = { type: "string", min: 8, max: 128 } as const;
const NAME = { type: "string", trim: true, min: 1, max: 100 } as const;
const REFRESH_TOKEN = { type: "string", min: 16, max: 128 } as const;
const ROLES = {
	type: "array",
	items: { type: "enum", values: ["customer", "admin"] },
	min: 1,
	max: 2,
	unique: true
} as const;

const ROLE_CUSTOMER: Role = "customer";
/** The same answer for an unknown email, a wrong password and a disabled account. */
const BAD_CREDENTIALS = "Invalid email or password";
const EMBEDDED_ADMIN_EMAIL = "admin@flashmart.local";

const actions = {
	/** Creates a customer account and signs it in. */
	register: {
		params: { $$strict: "remove", email: EMAIL, password: PASSWORD, name: NAME },
		async handler(this: UsersThis, ctx: Context<RegisterParams, AppMeta>): Promise<TokenBundle> {
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

	/** Exchanges email and password for tokens. Throttled per email and per client address. */
	login: {
		params: {
			$$strict: "remove",
			email: EMAIL,
			password: { type: "string", min: 1, max: 1024 }
		},
		async handler(this: UsersThis, ctx: Context<LoginParams, AppMeta>): Promise<TokenBundle> {
			const keys = [`email:${ctx.params.email}`];
			if (ctx.meta.clientIp) keys.push(`ip:${ctx.meta.clientIp}`);
			await this.checkThrottle(keys);

			const doc = await this.findByEmail(ctx.params.email);
			const ok = await verifyPassword(ctx.params.password, doc?.passwordHash);
			if (!doc || !ok || doc.disabled) {
				await this.recordFailure(keys);
				this.audit("login_failed", {
					email: ctx.params.email,
					reason: !doc ? "unknown" : ok ? "disabled" : "password"
				});
				throw new UnauthorizedError("INVALID_CREDENTIALS", BAD_CREDENTIALS);
			}
			await this.clearFailures(keys[0]);
			bindToScope({ userId: doc._id });
			this.audit("login_succeeded", { userId: doc._id });
			return this.issueBundle(doc);
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
					tokens: {
						collection: "refresh_tokens",
						indexes: [
							{ fields: { tokenHash: 1 }, unique: true },
							{ fields: { familyId: 1 } },
							{ fields: { userId: 1 } },
							{ fields: { expiresAt: 1 }, expireAfterSeconds: 0 }
						]
					},
					attempts: {
						collection: "login_attempts",
						indexes: [
							{ fields: { key: 1 }, unique: true },
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
				const user: User = {
					id: doc._id,
					email: doc.email,
					name: doc.name,
					roles: doc.roles,
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

			/** 429 while any key has reached the failure limit within the window. */
			async checkThrottle(this: UsersThis, keys: string[]): Promise<void> {
				const now = Date.now();
				const windowMs = this.auth.loginFailureWindow * 1000;
				for (const key of keys) {
					const doc = (await this.stores.attempts.findOne({ key })) as AttemptDoc | null;
					if (!doc || doc.windowStart + windowMs <= now || doc.count < this.auth.loginMaxFailures)
						continue;
					const retryAfter = Math.max(1, Math.ceil((doc.windowStart + windowMs - now) / 1000));
					this.audit("login_throttled", { key: key.startsWith("email:") ? "email" : "address" });
					throw new MoleculerClientError(
						"Too many failed logins, try again later",
						429,
						"RATE_LIMIT_EXCEEDED",
						{
							retryAfter
						}
					);
				}
			},

			/** Counts a failure against each key, in the store every gateway shares (through this service). */
			async recordFailure(this: UsersThis, keys: string[]): Promise<void> {
				const now = Date.now();
				const windowMs = this.auth.loginFailureWindow * 1000;
				const expiresAt = new Date(now + windowMs);
				for (const key of keys) {
					const doc = (await this.stores.attempts.findOne({ key })) as AttemptDoc | null;
					if (doc && doc.windowStart + windowMs > now) {
						await this.stores.attempts.updateMany({ key }, { $inc: { count: 1 } });
					} else if (doc) {
						// The window ended: start a new one, unless a racing request already did.
						await this.stores.attempts.updateMany(
							{ key, windowStart: doc.windowStart },
							{ $set: { count: 1, windowStart: now, expiresAt } }
						);
					} else {
						try {
							await this.stores.attempts.insert({ key, count: 1, windowStart: now, expiresAt });
						} catch (err) {
							if (!isDuplicateKeyError(err)) throw err;
							await this.stores.attempts.updateMany({ key }, { $inc: { count: 1 } });
						}
					}
				}
			},

			async clearFailures(this: UsersThis, key: string): Promise<void> {
				await this.stores.attempts.removeMany({ key });
			},

			/** A structured security log line with the request id, and a count in flashmart_auth_events_total. */
			audit(this: UsersThis, event: AuthEvent, fields: Record<string, unknown> = {}) {
				this.logger.info(`audit: ${event}`, { audit: event, ...fields });
				this.broker.metrics.increment(METRIC.AUTH_EVENTS, { event });
			},

			/**
			 * ADMIN_EMAIL/ADMIN_PASSWORD create or update the admin at every start. The embedded mode without them
			 * creates admin@flashmart.local once with a generated password, printed once.
			 */
			async bootstrapAdmin(this: UsersThis): Promise<void> {
				let email = this.auth.adminEmail;
				let password = this.auth.adminPassword;
				if (!email || !password) {
					if (cfg.mode !== "embedded" || (await this.findByEmail(EMBEDDED_ADMIN_EMAIL))) return;
					email = EMBEDDED_ADMIN_EMAIL;
					password = randomBytes(12).toString("base64url");
					// Printed, not logged: the password must not travel to the log store.
					process.stdout.write(`\nEmbedded admin account: ${email} / ${password} (shown once)\n\n`);
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
		},

		async started(this: UsersThis) {
			await this.bootstrapAdmin();
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createUsersService(configOf(broker));
