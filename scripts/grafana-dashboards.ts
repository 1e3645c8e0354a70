/**
 * The Grafana dashboards of monitoring/grafana/dashboards/, as data. Grafana's JSON repeats the same boilerplate
 * for every panel (datasource, grid position, field config); here each panel is one line of what matters: a
 * title, its PromQL and a unit. `npm run dashboards` writes the JSON files, which are what Grafana provisions and
 * what is committed; test/unit/monitoring/dashboards.spec.ts fails when they differ from this source, so an edit
 * made in the Grafana UI and exported must be carried back here.
 *
 * Conventions: every query uses `$__rate_interval` (or `$__range` for totals over the picked time range), every
 * panel uses the `datasource` variable, uids are stable (links and alerts point at them).
 */
import fs from "node:fs";
import path from "node:path";

type PanelKind = "timeseries" | "stat";

interface Target {
	expr: string;
	legend?: string;
}

interface PanelSpec {
	title: string;
	kind: PanelKind;
	targets: Target[];
	unit?: string;
	description?: string;
	/** Grid width out of 24 (default: 6 for a stat, 12 for a time series). */
	width?: number;
}

interface RowSpec {
	title: string;
	panels: PanelSpec[];
}

interface DashboardSpec {
	uid: string;
	title: string;
	description: string;
	tags: string[];
	rows: RowSpec[];
	/** Extra template variables (the datasource variable is always there). */
	variables?: Array<{ name: string; label: string; query: string }>;
}

const ts = (title: string, unit: string, ...targets: Target[]): PanelSpec => ({
	title,
	kind: "timeseries",
	unit,
	targets
});
const stat = (title: string, unit: string, expr: string, width = 6): PanelSpec => ({
	title,
	kind: "stat",
	unit,
	width,
	targets: [{ expr }]
});
const q = (expr: string, legend?: string): Target => ({ expr, legend });

/** Health probes (compose healthchecks, load balancers) are not user traffic: a starting gateway answers 503. */
const NOT_PROBE = `route!~"/health|/live|/ready|/metrics"`;
const RATE = "$__rate_interval";
const RANGE = "$__range";
const HTTP = `http_requests_total{${NOT_PROBE}}`;
const HTTP_5XX = `http_requests_total{${NOT_PROBE}, status=~"5.."}`;
const DURATION = "http_request_duration_seconds_bucket";
const LATENCY = `${DURATION}{${NOT_PROBE}}`;
const CHECKOUT = `method="POST", route="/api/orders"`;
const CART_ADD = `method="POST", route="/api/cart/items"`;
const ACTIONS = `type="local", service=~"$service"`;

/** Error ratio that is 0 (not "no data") while nothing fails. */
const ratio5xx = (window: string, by = "") =>
	`(sum${by}(rate(${HTTP_5XX}[${window}])) or vector(0)) / sum${by}(rate(${HTTP}[${window}]))`;
const quantile = (qv: number, bucket: string, by: string, window = RATE) =>
	`histogram_quantile(${qv}, sum by (${by}le) (rate(${bucket}[${window}])))`;
/** Share of checkouts answered with `status` (a label matcher), 0 while none is. */
const checkoutShare = (status: string) =>
	`(sum(rate(http_requests_total{${CHECKOUT}, ${status}}[${RATE}])) or vector(0)) / sum(rate(http_requests_total{${CHECKOUT}}[${RATE}]))`;

export const DASHBOARDS: DashboardSpec[] = [
	{
		uid: "flashmart-overview",
		title: "FlashMart / Platform Overview",
		description: "RED at the gateways, the SLOs and the state of the cluster.",
		tags: ["flashmart", "slo"],
		rows: [
			{
				title: "Gateway: rate, errors, duration",
				panels: [
					stat("Requests/s", "reqps", `sum(rate(${HTTP}[${RATE}]))`),
					stat("5xx ratio", "percentunit", ratio5xx(RATE)),
					stat("p95 latency", "s", quantile(0.95, LATENCY, "")),
					stat("Gateways up", "none", `sum(up{job="flashmart", component="gateway"})`),
					ts(
						"Requests/s by status",
						"reqps",
						q(`sum by (status) (rate(${HTTP}[${RATE}]))`, "{{status}}")
					),
					ts(
						"Requests/s by route",
						"reqps",
						q(`sum by (method, route) (rate(${HTTP}[${RATE}]))`, "{{method}} {{route}}")
					),
					ts(
						"4xx and 5xx/s by route",
						"reqps",
						q(
							`sum by (route, status) (rate(http_requests_total{status=~"[45].."}[${RATE}]))`,
							"{{status}} {{route}}"
						)
					),
					ts(
						"Latency p50 / p95 / p99",
						"s",
						q(quantile(0.5, LATENCY, ""), "p50"),
						q(quantile(0.95, LATENCY, ""), "p95"),
						q(quantile(0.99, LATENCY, ""), "p99")
					),
					ts("p95 latency by route", "s", q(quantile(0.95, LATENCY, "route, "), "{{route}}"))
				]
			},
			{
				title: "SLOs",
				panels: [
					stat(
						"Availability (non-5xx) over the range",
						"percentunit",
						`1 - ((sum(increase(${HTTP_5XX}[${RANGE}])) or vector(0)) / sum(increase(${HTTP}[${RANGE}])))`
					),
					stat(
						"Requests under the 500 ms SLO",
						"percentunit",
						// Moleculer's reporter writes no _count for a histogram without quantiles: +Inf is the count.
						`sum(rate(${DURATION}{le="0.5", ${NOT_PROBE}}[${RANGE}])) / sum(rate(${DURATION}{le="+Inf", ${NOT_PROBE}}[${RANGE}]))`
					),
					stat(
						"Checkout error budget left (30 days, 99.5%)",
						"percentunit",
						`1 - ((sum(increase(http_requests_total{${CHECKOUT}, status=~"5.."}[30d])) or vector(0)) / sum(increase(http_requests_total{${CHECKOUT}}[30d]))) / 0.005`
					),
					stat("Checkout p95", "s", quantile(0.95, `${DURATION}{${CHECKOUT}}`, "")),
					ts(
						"Checkout error-budget burn rate (1 = budget spent in exactly 30 days)",
						"none",
						q("flashmart:checkout_error_ratio:rate5m / 0.005", "5m"),
						q("flashmart:checkout_error_ratio:rate1h / 0.005", "1h"),
						q("flashmart:checkout_error_ratio:rate6h / 0.005", "6h")
					),
					ts(
						"p95 against the SLO",
						"s",
						q(quantile(0.95, LATENCY, ""), "p95"),
						q("vector(0.5)", "SLO")
					)
				]
			},
			{
				title: "Cluster",
				panels: [
					stat("Nodes up", "none", `sum(up{job="flashmart"})`),
					stat("Nodes down", "none", `count(up{job="flashmart"} == 0) or vector(0)`),
					stat("Alerts firing", "none", `count(ALERTS{alertstate="firing"}) or vector(0)`),
					stat(
						"Nodes disconnected from NATS",
						"none",
						`count(moleculer_transit_connected == 0) or vector(0)`
					),
					ts(
						"Targets up by component",
						"none",
						q(`sum by (component) (up{job="flashmart"})`, "{{component}}")
					),
					ts(
						"Nodes each node sees online",
						"none",
						q(`moleculer_registry_nodes_online_total`, "{{nodeID}}")
					)
				]
			}
		]
	},
	{
		uid: "flashmart-services",
		title: "FlashMart / Service Health",
		description:
			"Per Moleculer service and action: calls, errors, latency, circuit breakers, NATS transit.",
		tags: ["flashmart", "moleculer"],
		variables: [
			{
				name: "service",
				label: "Service",
				query: `label_values(moleculer_request_total{type="local"}, service)`
			}
		],
		rows: [
			{
				title: "Calls, errors, latency",
				panels: [
					ts(
						"Calls/s by action",
						"reqps",
						q(`sum by (action) (rate(moleculer_request_total{${ACTIONS}}[${RATE}]))`, "{{action}}")
					),
					ts(
						"Errors/s by action and type",
						"reqps",
						q(
							`sum by (action, errorType) (rate(moleculer_request_error_total{${ACTIONS}}[${RATE}]))`,
							"{{action}} {{errorType}}"
						)
					),
					ts(
						"Server errors/s by action (5xx, timeouts)",
						"reqps",
						q(
							`sum by (action) (rate(moleculer_request_error_total{${ACTIONS}, errorCode=~"5.."}[${RATE}])) or vector(0)`,
							"{{action}}"
						)
					),
					ts(
						"p95 by action",
						"ms",
						q(quantile(0.95, `moleculer_request_time_bucket{${ACTIONS}}`, "action, "), "{{action}}")
					),
					ts(
						"p95 of calls to other services, seen by the caller",
						"ms",
						q(
							quantile(
								0.95,
								`moleculer_request_time_bucket{type="remote", service=~"$service"}`,
								"caller, action, "
							),
							"{{caller}} → {{action}}"
						)
					),
					ts(
						"In-flight calls by action",
						"none",
						q(`sum by (action) (moleculer_request_active{${ACTIONS}})`, "{{action}}")
					),
					ts(
						"Timeouts/s by action",
						"reqps",
						q(
							`sum by (action) (rate(moleculer_request_timeout_total{service=~"$service"}[${RATE}]))`,
							"{{action}}"
						)
					),
					ts(
						"Bulkhead queue by action",
						"none",
						q(
							`sum by (action) (moleculer_request_bulkhead_queue_size{service=~"$service"})`,
							"{{action}}"
						)
					)
				]
			},
			{
				title: "Circuit breakers",
				panels: [
					stat(
						"Open breakers",
						"none",
						`sum(moleculer_circuit_breaker_opened_active) or vector(0)`
					),
					stat(
						"Half-open breakers",
						"none",
						`sum(moleculer_circuit_breaker_half_opened_active) or vector(0)`
					),
					stat(
						"Breakers opened over the range",
						"none",
						`sum(increase(moleculer_circuit_breaker_opened_total[${RANGE}])) or vector(0)`
					),
					stat(
						"Timeouts over the range",
						"none",
						`sum(increase(moleculer_request_timeout_total[${RANGE}])) or vector(0)`
					),
					ts(
						"Breakers opened by caller, action and target node",
						"none",
						q(
							`sum by (nodeID, action, affectedNodeID) (increase(moleculer_circuit_breaker_opened_total[${RATE}]))`,
							"{{nodeID}}: {{action}} @ {{affectedNodeID}}"
						)
					)
				]
			},
			{
				title: "NATS transit",
				panels: [
					ts(
						"Packets/s sent and received by node",
						"pps",
						q(
							`sum by (nodeID) (rate(moleculer_transporter_packets_sent_total[${RATE}]))`,
							"{{nodeID}} sent"
						),
						q(
							`sum by (nodeID) (rate(moleculer_transporter_packets_received_total[${RATE}]))`,
							"{{nodeID}} received"
						)
					),
					ts(
						"Bytes/s sent and received by node",
						"Bps",
						q(
							`sum by (nodeID) (rate(moleculer_transporter_packets_sent_bytes[${RATE}]))`,
							"{{nodeID}} sent"
						),
						q(
							`sum by (nodeID) (rate(moleculer_transporter_packets_received_bytes[${RATE}]))`,
							"{{nodeID}} received"
						)
					),
					// Not moleculer_transit_requests_active: Moleculer 0.15's Metrics middleware adds the pending
					// count to that gauge at every packet it publishes (metrics.increment, never a set or a
					// decrement), so it only grows. moleculer_request_active{type="remote"} is raised when a call to
					// another node starts and lowered when its answer (or error, or timeout) comes back.
					ts(
						"Requests awaiting a remote answer",
						"none",
						q(`sum by (nodeID) (moleculer_request_active{type="remote"})`, "{{nodeID}}")
					),
					ts(
						"Transporter connected (1) by node",
						"none",
						q(`min by (nodeID) (moleculer_transit_connected)`, "{{nodeID}}")
					),
					ts(
						"Durable events sent and consumed/s",
						"none",
						q(
							`sum by (channel) (rate(moleculer_channels_messages_sent[${RATE}]))`,
							"sent {{channel}}"
						),
						q(
							`sum by (channel, group) (rate(moleculer_channels_messages_total[${RATE}]))`,
							"consumed {{channel}} by {{group}}"
						)
					),
					ts(
						"Broadcast events (cache invalidation) sent and received/s",
						"none",
						q(
							`sum by (event) (rate(moleculer_event_broadcast_total[${RATE}]))`,
							"broadcast {{event}}"
						),
						q(
							`sum by (event) (rate(moleculer_event_received_total[${RATE}]))`,
							"received {{event}}"
						)
					)
				]
			},
			{
				title: "NATS server (nats-exporter)",
				panels: [
					stat("Client connections", "none", `sum(gnatsd_varz_connections)`),
					stat("Slow consumers", "none", `sum(gnatsd_varz_slow_consumers)`),
					ts(
						"Messages/s in and out",
						"none",
						q(`sum(rate(gnatsd_varz_in_msgs[${RATE}]))`, "in"),
						q(`sum(rate(gnatsd_varz_out_msgs[${RATE}]))`, "out")
					),
					ts("Server memory", "bytes", q(`sum by (server_id) (gnatsd_varz_mem)`, "{{server_id}}"))
				]
			}
		]
	},
	{
		uid: "flashmart-business",
		title: "FlashMart / Business",
		description:
			"Orders, revenue, conversion, payment outcomes, stock-outs, customers, flash sales.",
		tags: ["flashmart", "business"],
		rows: [
			{
				title: "Orders and conversion",
				panels: [
					stat(
						"Orders placed over the range",
						"none",
						`sum(increase(flashmart_orders_total{status="pending_payment"}[${RANGE}]))`
					),
					stat(
						"Cart-to-order conversion (orders / items added)",
						"percentunit",
						`sum(increase(http_requests_total{${CHECKOUT}, status="201"}[${RANGE}])) / sum(increase(http_requests_total{${CART_ADD}, status=~"2.."}[${RANGE}]))`
					),
					stat(
						"Checkout p95 (service side)",
						"s",
						quantile(0.95, "flashmart_checkout_duration_seconds_bucket", "")
					),
					stat(
						"Idempotent replays over the range",
						"none",
						`sum(increase(flashmart_idempotent_replays_total[${RANGE}]))`
					),
					ts(
						"Orders/s entering each status",
						"none",
						q(`sum by (status) (rate(flashmart_orders_total[${RATE}]))`, "{{status}}")
					),
					ts(
						"Checkout latency (service side)",
						"s",
						q(quantile(0.5, "flashmart_checkout_duration_seconds_bucket", ""), "p50"),
						q(quantile(0.95, "flashmart_checkout_duration_seconds_bucket", ""), "p95")
					),
					ts(
						"Checkouts/s by answer",
						"reqps",
						q(`sum by (status) (rate(http_requests_total{${CHECKOUT}}[${RATE}]))`, "{{status}}")
					)
				]
			},
			{
				title: "Revenue and payments",
				panels: [
					stat(
						"Revenue over the range",
						"none",
						`sum(increase(flashmart_revenue_minor_units_total[${RANGE}])) / 100`
					),
					stat(
						"Paid / placed orders",
						"percentunit",
						`sum(increase(flashmart_orders_total{status="paid"}[${RANGE}])) / sum(increase(flashmart_orders_total{status="pending_payment"}[${RANGE}]))`
					),
					stat(
						"Payment success ratio",
						"percentunit",
						`sum(increase(flashmart_payments_total{outcome="succeeded"}[${RANGE}])) / sum(increase(flashmart_payments_total{outcome!="refunded"}[${RANGE}]))`
					),
					ts(
						"Revenue per minute by currency (major units)",
						"none",
						q(
							`sum by (currency) (rate(flashmart_revenue_minor_units_total[${RATE}])) * 60 / 100`,
							"{{currency}}"
						)
					),
					ts(
						"Payment outcomes/s",
						"none",
						q(`sum by (outcome) (rate(flashmart_payments_total[${RATE}]))`, "{{outcome}}")
					),
					ts(
						"Payment provider latency p95",
						"s",
						q(quantile(0.95, "flashmart_payment_duration_seconds_bucket", ""), "p95")
					)
				]
			},
			{
				title: "Stock",
				panels: [
					stat(
						"Stock-outs over the range",
						"none",
						`sum(increase(flashmart_reservation_failures_total[${RANGE}]))`
					),
					stat(
						"Low-stock events over the range",
						"none",
						`sum(increase(flashmart_inventory_low_total[${RANGE}]))`
					),
					ts(
						"Checkouts refused for stock, by reason",
						"none",
						q(
							`sum by (reason) (increase(flashmart_reservation_failures_total[${RATE}]))`,
							"{{reason}}"
						)
					)
				]
			},
			{
				title: "Customers and events",
				panels: [
					stat(
						"Failed logins over the range",
						"none",
						`sum(increase(flashmart_auth_events_total{event="login_failed"}[${RANGE}])) or vector(0)`
					),
					stat(
						"Dead-lettered events over the range",
						"none",
						`sum(increase(flashmart_events_dead_lettered_total[${RANGE}])) or vector(0)`
					),
					ts(
						"Auth events/s",
						"none",
						q(`sum by (event) (rate(flashmart_auth_events_total[${RATE}]))`, "{{event}}")
					),
					ts(
						"Domain events published/s",
						"none",
						q(`sum by (event) (rate(flashmart_events_published_total[${RATE}]))`, "{{event}}")
					),
					// Every node of a service measures the same outbox (the store is the service's): max, not sum.
					{
						...ts(
							"Events waiting in the outbox, by service",
							"none",
							q(`max by (service) (flashmart_outbox_pending_events)`, "{{service}}")
						),
						description:
							"Durable events written with their state change and not yet published. Near 0 when the relay keeps up; a level that stays up means NATS or JetStream refuses them (FlashMartOutboxStuck)."
					},
					{
						...ts(
							"Oldest event waiting in the outbox, by service",
							"s",
							q(`max by (service) (flashmart_outbox_oldest_pending_seconds)`, "{{service}}")
						),
						description:
							"Age of the oldest unpublished event of each service's outbox (0 when empty). FlashMartOutboxStuck fires when it stays over 5 minutes for 5 minutes."
					}
				]
			},
			{
				title: "Flash sales",
				panels: [
					stat("Sales live", "none", `max(flashmart_sales_live) or vector(0)`),
					stat(
						"Sale checkouts admitted over the range",
						"none",
						`sum(increase(flashmart_sale_checkouts_total{outcome="admitted"}[${RANGE}])) or vector(0)`
					),
					stat(
						"Checkouts refused at once over the range",
						"none",
						`sum(increase(flashmart_checkout_rejections_total[${RANGE}])) or vector(0)`
					),
					stat(
						"Hold expiries over the range",
						"none",
						`sum(increase(flashmart_hold_expiries_total[${RANGE}])) or vector(0)`
					),
					// Every inventory node reads the same sale from the same store: max, not sum.
					{
						...ts(
							"Sale units left, by sale and product",
							"none",
							q(`max by (sale, product) (flashmart_sale_units_left)`, "{{sale}} {{product}}")
						),
						description:
							"Units of each sale item neither held by an unpaid order nor sold. Expired holds give units back, so it can rise."
					},
					ts(
						"Checkouts admitted/s, by sale",
						"reqps",
						q(
							`sum by (sale) (rate(flashmart_sale_checkouts_total{outcome="admitted"}[${RATE}]))`,
							"{{sale}}"
						)
					),
					{
						...ts(
							"Checkouts rejected/s, by reason",
							"reqps",
							q(
								`sum by (outcome) (rate(flashmart_sale_checkouts_total{outcome!="admitted"}[${RATE}]))`,
								"{{outcome}}"
							),
							q(
								`sum by (reason) (rate(flashmart_checkout_rejections_total[${RATE}]))`,
								"{{reason}} (refused at once)"
							)
						),
						description:
							"Sale lines inventory refused (out_of_stock, limit_exceeded, not_started), and checkouts refused before any stock was asked for: overloaded (503 with Retry-After), sold_out (409 from what is known sold out).",
						width: 24
					},
					// As the outbox gauges: one store of holds, counted by every inventory node.
					ts("Holds open", "none", q(`max(flashmart_holds_open)`, "holds")),
					ts(
						"Hold expiries/s, by kind",
						"none",
						q(`sum by (kind) (rate(flashmart_hold_expiries_total[${RATE}]))`, "{{kind}}")
					),
					{
						...ts(
							"Checkout p99 against 250 ms",
							"s",
							q(quantile(0.99, `${DURATION}{${CHECKOUT}}`, ""), "p99"),
							q("vector(0.25)", "bound")
						),
						description:
							"POST /api/orders at the gateways. FlashMartSaleCheckoutsSlow fires when it stays over 250 ms for 3 minutes while a sale is live."
					},
					{
						...ts(
							"Checkout error ratio (500/504; 503 refusals apart)",
							"percentunit",
							q(checkoutShare(`status=~"5..", status!="503"`), "5xx except 503"),
							q(checkoutShare(`status="503"`), "503")
						),
						description:
							"503 is mostly admission refusing the excess at once, which is intended; the rest are failures. FlashMartSaleCheckoutsFailing fires when 5xx except 503 stay over 1% for 2 minutes while a sale is live."
					}
				]
			}
		]
	},
	{
		uid: "flashmart-mongodb",
		title: "FlashMart / MongoDB",
		description:
			"MongoDB through mongodb-exporter: availability, connections, operations, latency, memory.",
		tags: ["flashmart", "mongodb"],
		rows: [
			{
				title: "MongoDB (mongodb-exporter)",
				panels: [
					stat("Up", "none", `min(mongodb_up)`),
					stat("Current connections", "none", `sum(mongodb_ss_connections{conn_type="current"})`),
					stat("Resident memory", "decmbytes", `sum(mongodb_ss_mem_resident)`),
					stat("Uptime", "s", `max(mongodb_ss_uptime)`),
					ts(
						"Operations/s by type",
						"ops",
						q(
							`sum by (legacy_op_type) (rate(mongodb_ss_opcounters[${RATE}]))`,
							"{{legacy_op_type}}"
						)
					),
					ts(
						"Average operation latency",
						"µs",
						q(
							`sum by (op_type) (rate(mongodb_ss_opLatencies_latency[${RATE}])) / sum by (op_type) (rate(mongodb_ss_opLatencies_ops[${RATE}]))`,
							"{{op_type}}"
						)
					),
					ts(
						"Connections",
						"none",
						q(`sum by (conn_type) (mongodb_ss_connections)`, "{{conn_type}}")
					),
					ts(
						"Documents/s by operation",
						"none",
						q(
							`sum by (doc_op_type) (rate(mongodb_ss_metrics_document[${RATE}]))`,
							"{{doc_op_type}}"
						)
					)
				]
			}
		]
	},
	{
		uid: "flashmart-system",
		title: "FlashMart / System Resources",
		description:
			"Memory and CPU of FlashMart nodes, log shipping, the host, containers, MinIO, Elasticsearch.",
		tags: ["flashmart", "resources"],
		rows: [
			{
				title: "FlashMart nodes",
				panels: [
					ts("Resident memory by node", "bytes", q(`process_memory_rss`, "{{nodeID}}")),
					ts(
						"Heap used / heap limit by node",
						"percentunit",
						q(
							`process_memory_heap_size_used / process_memory_heap_stat_heap_size_limit`,
							"{{nodeID}}"
						)
					),
					ts("Active handles by node", "none", q(`process_internal_active_handles`, "{{nodeID}}")),
					ts(
						"Host CPU utilization seen by nodes",
						"percent",
						q(`max by (instance) (os_cpu_utilization)`, "{{instance}}")
					),
					ts("Uptime by node", "s", q(`process_uptime`, "{{nodeID}}"))
				]
			},
			{
				title: "Log shipping to Elasticsearch",
				panels: [
					ts(
						"Lines shipped/s by node",
						"none",
						q(`sum by (nodeID) (rate(flashmart_logs_shipped_total[${RATE}]))`, "{{nodeID}}")
					),
					ts(
						"Lines buffered by node",
						"none",
						q(`sum by (nodeID) (flashmart_logs_buffered)`, "{{nodeID}}")
					),
					stat(
						"Lines dropped over the range",
						"none",
						`sum(increase(flashmart_logs_dropped_total[${RANGE}])) or vector(0)`
					),
					stat(
						"Bulk errors over the range",
						"none",
						`sum(increase(flashmart_logs_ship_errors_total[${RANGE}])) or vector(0)`
					)
				]
			},
			{
				title: "Host (node-exporter)",
				panels: [
					ts(
						"CPU busy",
						"percentunit",
						q(
							`1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[${RATE}]))`,
							"{{instance}}"
						)
					),
					ts(
						"Memory available",
						"percentunit",
						q(`node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes`, "{{instance}}")
					),
					ts(
						"Disk free by mount point",
						"percentunit",
						q(
							`node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs"}`,
							"{{mountpoint}}"
						)
					),
					ts(
						"Network received and sent",
						"Bps",
						q(
							`sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[${RATE}]))`,
							"received"
						),
						q(
							`sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[${RATE}]))`,
							"sent"
						)
					)
				]
			},
			{
				title: "Containers (cAdvisor)",
				panels: [
					ts(
						"CPU cores by container",
						"none",
						q(
							`sum by (name) (rate(container_cpu_usage_seconds_total{name!=""}[${RATE}]))`,
							"{{name}}"
						)
					),
					ts(
						"Memory working set by container",
						"bytes",
						q(`sum by (name) (container_memory_working_set_bytes{name!=""})`, "{{name}}")
					)
				]
			},
			{
				title: "Object store (MinIO) and log store (Elasticsearch)",
				panels: [
					stat("MinIO usable free space", "bytes", `min(minio_cluster_capacity_usable_free_bytes)`),
					stat(
						"Elasticsearch cluster status (0 green, 1 yellow, 2 red)",
						"none",
						`max(elasticsearch_cluster_health_status{color="yellow"}) + 2 * max(elasticsearch_cluster_health_status{color="red"})`
					),
					ts(
						"MinIO S3 requests/s by API",
						"reqps",
						q(`sum by (api) (rate(minio_s3_requests_total[${RATE}]))`, "{{api}}")
					),
					ts(
						"Elasticsearch documents in logs indices",
						"none",
						q(`sum(elasticsearch_indices_docs_primary{index=~"logs-flashmart-.*"})`, "documents")
					)
				]
			}
		]
	}
];

const DATASOURCE = { type: "prometheus", uid: "${datasource}" };

/** Grafana dashboard JSON (schemaVersion 39) of one spec. */
export function toGrafana(spec: DashboardSpec): Record<string, unknown> {
	const panels: Record<string, unknown>[] = [];
	let id = 1;
	let y = 0;
	for (const row of spec.rows) {
		panels.push({
			id: id++,
			type: "row",
			title: row.title,
			collapsed: false,
			gridPos: { h: 1, w: 24, x: 0, y: y++ },
			panels: []
		});
		let x = 0;
		let rowHeight = 0;
		for (const p of row.panels) {
			const w = p.width ?? (p.kind === "stat" ? 6 : 12);
			const h = p.kind === "stat" ? 4 : 8;
			if (x + w > 24) {
				x = 0;
				y += rowHeight;
				rowHeight = 0;
			}
			panels.push({
				id: id++,
				type: p.kind,
				title: p.title,
				...(p.description ? { description: p.description } : {}),
				datasource: DATASOURCE,
				gridPos: { h, w, x, y },
				fieldConfig: { defaults: { unit: p.unit ?? "none" }, overrides: [] },
				options:
					p.kind === "stat"
						? {
								reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
								colorMode: "value",
								graphMode: "area"
							}
						: { legend: { displayMode: "list", placement: "bottom", showLegend: true } },
				targets: p.targets.map((t, i) => ({
					refId: String.fromCharCode(65 + i),
					datasource: DATASOURCE,
					expr: t.expr,
					...(t.legend ? { legendFormat: t.legend } : {}),
					...(p.kind === "stat" ? { instant: true } : { range: true })
				}))
			});
			x += w;
			rowHeight = Math.max(rowHeight, h);
		}
		y += rowHeight;
	}
	const templating = [
		{
			name: "datasource",
			label: "Prometheus",
			type: "datasource",
			query: "prometheus",
			current: { text: "Prometheus", value: "prometheus" },
			hide: 0,
			refresh: 1,
			options: []
		},
		...(spec.variables ?? []).map(v => ({
			name: v.name,
			label: v.label,
			type: "query",
			datasource: DATASOURCE,
			query: { query: v.query, refId: "variable" },
			definition: v.query,
			includeAll: true,
			multi: true,
			allValue: ".*",
			current: { text: "All", value: "$__all" },
			refresh: 2,
			sort: 1,
			hide: 0,
			options: []
		}))
	];
	return {
		uid: spec.uid,
		title: spec.title,
		description: spec.description,
		tags: spec.tags,
		editable: true,
		graphTooltip: 1,
		refresh: "30s",
		schemaVersion: 39,
		time: { from: "now-1h", to: "now" },
		timezone: "utc",
		templating: { list: templating },
		annotations: {
			list: [
				{
					builtIn: 1,
					datasource: { type: "grafana", uid: "-- Grafana --" },
					enable: true,
					hide: true,
					iconColor: "rgba(0, 211, 255, 1)",
					name: "Annotations & Alerts",
					type: "dashboard"
				}
			]
		},
		links: DASHBOARDS.filter(d => d.uid !== spec.uid).map(d => ({
			title: d.title,
			type: "link",
			url: `/d/${d.uid}`,
			keepTime: true,
			includeVars: false
		})),
		panels
	};
}

/** monitoring/grafana/dashboards of the source tree, from scripts/ (ts-node, jest) or dist/scripts/. */
export function dashboardDir(): string {
	const up = fs.existsSync(path.join(__dirname, "..", "monitoring")) ? [".."] : ["..", ".."];
	return path.join(__dirname, ...up, "monitoring", "grafana", "dashboards");
}

/** File name → JSON text, exactly as committed (generated files: .prettierignore leaves them as written here). */
export function renderDashboards(): Map<string, string> {
	return new Map(
		DASHBOARDS.map(d => [`${d.uid}.json`, `${JSON.stringify(toGrafana(d), null, "\t")}\n`])
	);
}

if (require.main === module) {
	const dir = dashboardDir();
	fs.mkdirSync(dir, { recursive: true });
	for (const [file, text] of renderDashboards()) {
		fs.writeFileSync(path.join(dir, file), text);
		console.log(`wrote ${path.relative(process.cwd(), path.join(dir, file))}`);
	}
}
