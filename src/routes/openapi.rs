//! The OpenAPI 3.1 document of the whole HTTP API, served without auth at
//! `GET /api/v1/openapi.json`.
//!
//! Built here with utoipa's builders rather than derives on the handlers, so
//! the description of the contract sits in one file. `tests/api/openapi.rs`
//! fails when a route registered in `src/routes/` is missing from it.
use actix_web::{web, HttpResponse};
use std::sync::OnceLock;
use utoipa::openapi::{
    path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn},
    request_body::RequestBodyBuilder,
    schema::{
        AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, Ref, SchemaFormat,
        SchemaType, Type,
    },
    security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, RefOr,
    Required, ResponseBuilder, Schema,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(serve));
}

async fn serve() -> HttpResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(|| {
        document()
            .to_json()
            .expect("the OpenAPI document serializes")
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.clone())
}

const JSON: &str = "application/json";
const BEARER: &str = "bearer";

// ---- schema helpers ----

fn of(ty: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(ty)
}
fn or_null(ty: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Array(vec![ty, Type::Null]))
}
fn int() -> ObjectBuilder {
    of(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}
fn int_in(min: i64, max: i64) -> ObjectBuilder {
    int().minimum(Some(min)).maximum(Some(max))
}
fn num_in(min: f64, max: f64) -> ObjectBuilder {
    of(Type::Number).minimum(Some(min)).maximum(Some(max))
}
fn string() -> ObjectBuilder {
    of(Type::String)
}
fn str_len(min: usize, max: usize) -> ObjectBuilder {
    string().min_length(Some(min)).max_length(Some(max))
}
fn one_of(values: &[&str]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().copied()))
}
fn time() -> ObjectBuilder {
    string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}
fn any() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::AnyValue)
}
/// An object that refuses unknown fields (the server's `deny_unknown_fields`).
fn closed() -> ObjectBuilder {
    of(Type::Object).additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
}
fn open() -> ObjectBuilder {
    of(Type::Object)
}
fn r(name: &str) -> Ref {
    Ref::from_schema_name(name)
}
fn list(items: impl Into<RefOr<Schema>>) -> ArrayBuilder {
    ArrayBuilder::new().items(items.into())
}
fn props(
    mut o: ObjectBuilder,
    fields: Vec<(&str, RefOr<Schema>)>,
    required: &[&str],
) -> ObjectBuilder {
    for (k, v) in fields {
        o = o.property(k, v);
    }
    for k in required {
        o = o.required(*k);
    }
    o
}
fn s(b: impl Into<Schema>) -> RefOr<Schema> {
    RefOr::T(b.into())
}
fn rs(name: &str) -> RefOr<Schema> {
    RefOr::Ref(r(name))
}

// ---- the shapes of docs/api.md ----

const ROLES: [&str; 4] = ["admin", "reviewer", "annotator", "service"];
const STRATEGIES: [&str; 5] = ["auto", "entropy", "margin", "least_confidence", "random"];
const STATUSES: [&str; 4] = ["unlabeled", "labeled", "review", "auto"];

fn schemas() -> Vec<(&'static str, RefOr<Schema>)> {
    let rule = props(
        closed(),
        vec![
            ("field", s(str_len(1, 200))),
            ("op", s(one_of(&["==", "!=", ">", ">=", "<", "<="]))),
            ("value", s(any())),
        ],
        &["field", "op", "value"],
    )
    .description(Some(
        "A routing rule on an item's `meta`: a match escalates the prediction. \
         `>`, `>=`, `<`, `<=` take a number or a string, `in` a non-empty list, \
         `==` and `!=` a scalar.",
    ));
    let routing_request = props(
        closed(),
        vec![
            ("auto_threshold", s(num_in(0.0, 1.0))),
            (
                "review_threshold",
                s(num_in(0.0, 1.0).description(Some("must not exceed auto_threshold"))),
            ),
            (
                "target_precision",
                s(or_null(Type::Number)
                    .exclusive_minimum(Some(0.0))
                    .exclusive_maximum(Some(1.0))),
            ),
            (
                "rules",
                s(ArrayBuilder::new()
                    .schema_type(SchemaType::Array(vec![Type::Array, Type::Null]))
                    .items(r("Rule"))
                    .max_items(Some(100))),
            ),
            ("audit_share", s(num_in(0.0, 1.0))),
            ("blind_share", s(num_in(0.0, 1.0))),
            ("gold_share", s(num_in(0.0, 1.0))),
        ],
        &[],
    );
    let project_fields = |o: ObjectBuilder| {
        props(
            o,
            vec![
                ("name", s(str_len(1, 200))),
                (
                    "labels",
                    s(list(str_len(1, 100))
                        .min_items(Some(2))
                        .max_items(Some(1000))
                        .unique_items(true)),
                ),
                ("strategy", s(one_of(&STRATEGIES))),
                (
                    "retrain_cron",
                    s(or_null(Type::String).description(Some(
                        "six-field cron, seconds first; null switches scheduled retraining off",
                    ))),
                ),
                ("min_new_labels", s(int_in(1, 1_000_000))),
                ("routing", rs("RoutingRequest")),
                ("lease_seconds", s(int_in(1, 86_400))),
                ("labels_per_item", s(int_in(1, 10))),
            ],
            &[],
        )
    };
    let new_project = project_fields(closed()).required("name").required("labels");
    let patch_project = project_fields(closed())
        .description(Some("Any of the settings; labels may only be appended to."));
    let counts = props(
        open(),
        [
            "items",
            "unlabeled",
            "labeled",
            "review",
            "escalated",
            "auto",
            "gold",
        ]
        .into_iter()
        .map(|k| (k, s(int())))
        .collect(),
        &["items", "unlabeled", "labeled", "review"],
    );
    let project = props(
        open(),
        vec![
            ("id", s(int())),
            ("name", s(string())),
            ("labels", s(list(string()))),
            ("strategy", s(one_of(&STRATEGIES))),
            ("retrain_cron", s(or_null(Type::String))),
            ("min_new_labels", s(int())),
            (
                "routing",
                s(props(
                    open(),
                    vec![
                        ("auto_threshold", s(of(Type::Number))),
                        ("review_threshold", s(of(Type::Number))),
                        ("target_precision", s(or_null(Type::Number))),
                        ("rules", s(list(r("Rule")))),
                        ("audit_share", s(of(Type::Number))),
                        ("blind_share", s(of(Type::Number))),
                        ("gold_share", s(of(Type::Number))),
                    ],
                    &["auto_threshold", "review_threshold"],
                )),
            ),
            ("lease_seconds", s(int())),
            ("labels_per_item", s(int())),
            ("feature_len", s(or_null(Type::Integer))),
            ("created_at", s(time())),
            ("counts", rs("Counts")),
        ],
        &["id", "name", "labels", "strategy", "created_at", "counts"],
    );
    let item_input = |with_label: bool| {
        let mut fields = vec![
            ("external_id", s(str_len(1, 256))),
            ("text", s(string().description(Some("at most 1 MiB")))),
            (
                "features",
                s(list(of(Type::Number))
                    .min_items(Some(1))
                    .max_items(Some(100_000))
                    .description(Some("finite numbers; the project's feature length"))),
            ),
            ("meta", s(or_null(Type::Object))),
        ];
        if with_label {
            fields.push((
                "label",
                s(string().description(Some("one of the project's labels"))),
            ));
        }
        props(closed(), fields, &[]).description(Some("An item needs `text`, `features`, or both."))
    };
    let gold_input = {
        let base = item_input(false);
        props(
            base,
            vec![
                (
                    "label",
                    s(string().description(Some("the known answer: one of the project's labels"))),
                ),
                (
                    "suggest",
                    s(string().description(Some(
                        "the label shown as the model's suggestion (the answer when absent)",
                    ))),
                ),
                ("confidence", s(num_in(0.0, 1.0))),
            ],
            &["label"],
        )
        .description(Some("A gold item: an item with a known answer."))
    };
    let label = props(
        open(),
        vec![
            ("id", s(int())),
            ("item_id", s(int())),
            ("label", s(string())),
            ("annotator", s(string())),
            (
                "source",
                s(one_of(&["human", "review", "override", "import"])),
            ),
            ("selection", s(or_null(Type::String))),
            ("created_at", s(time())),
            ("duration_ms", s(or_null(Type::Integer))),
        ],
        &[
            "id",
            "item_id",
            "label",
            "annotator",
            "source",
            "created_at",
        ],
    );
    let item = props(
        open(),
        vec![
            ("id", s(int())),
            ("external_id", s(string())),
            ("text", s(or_null(Type::String))),
            (
                "features",
                s(ArrayBuilder::new()
                    .schema_type(SchemaType::Array(vec![Type::Array, Type::Null]))
                    .items(of(Type::Number))),
            ),
            ("meta", s(or_null(Type::Object))),
            ("status", s(one_of(&STATUSES))),
            (
                "prediction",
                s(props(
                    or_null(Type::Object),
                    vec![
                        ("label", s(string())),
                        ("confidence", s(of(Type::Number))),
                        ("model_version", s(int())),
                    ],
                    &[],
                )),
            ),
            ("label", s(or_null(Type::String))),
            ("decided_by", s(or_null(Type::String))),
            ("labels", s(list(r("Label")))),
        ],
        &["id", "external_id", "status", "labels"],
    );
    let lease = props(
        open(),
        vec![
            ("item", rs("Item")),
            ("score", s(or_null(Type::Number))),
            (
                "suggestion",
                s(props(
                    or_null(Type::Object),
                    vec![("label", s(string())), ("confidence", s(of(Type::Number)))],
                    &[],
                )),
            ),
            ("tier", s(or_null(Type::String))),
            ("lease_expires_at", s(or_null(Type::String))),
        ],
        &["item"],
    );
    let model_version = props(
        open(),
        vec![
            ("version", s(int())),
            ("trained_at", s(time())),
            ("n_labels", s(int())),
            ("algorithm", s(string())),
            ("metrics", s(open())),
            (
                "thresholds",
                s(props(
                    open(),
                    vec![
                        ("auto", s(of(Type::Number))),
                        ("review", s(of(Type::Number))),
                    ],
                    &[],
                )),
            ),
            ("active", s(of(Type::Boolean))),
        ],
        &["version", "trained_at", "n_labels", "active"],
    );
    let token = props(
        open(),
        vec![
            ("id", s(int())),
            ("name", s(string())),
            ("role", s(one_of(&ROLES))),
            ("senior", s(of(Type::Boolean))),
            ("created_at", s(time())),
            ("revoked", s(of(Type::Boolean))),
            (
                "token",
                s(string().description(Some("the secret, shown once, on creation only"))),
            ),
        ],
        &["id", "name", "role"],
    );
    let error = props(
        open(),
        vec![(
            "error",
            s(props(
                open(),
                vec![
                    (
                        "code",
                        s(one_of(&crate::error::ErrorCode::ALL.map(|c| c.as_str()))),
                    ),
                    ("message", s(string())),
                ],
                &["code", "message"],
            )),
        )],
        &["error"],
    );
    vec![
        ("Error", s(error)),
        ("Rule", s(rule)),
        ("RoutingRequest", s(routing_request)),
        ("NewProject", s(new_project)),
        ("ProjectPatch", s(patch_project)),
        ("Counts", s(counts)),
        ("Project", s(project)),
        ("ItemInput", s(item_input(true))),
        ("GoldInput", s(gold_input)),
        ("PredictInput", s(item_input(false))),
        ("Label", s(label)),
        ("Item", s(item)),
        ("Lease", s(lease)),
        ("ModelVersion", s(model_version)),
        ("Token", s(token)),
    ]
}

// ---- operations ----

/// One documented operation: method, path (as served), and its description.
struct Op {
    method: HttpMethod,
    path: &'static str,
    op: OperationBuilder,
}

fn op(method: HttpMethod, path: &'static str, id: &str, summary: &str, who: Option<&str>) -> Op {
    let mut b = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary));
    b = match who {
        Some(w) => b
            .description(Some(format!("Who: {w}.")))
            .security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
            .response("401", error_response("missing or unknown token")),
        None => b.securities(Some(Vec::new())),
    };
    if who.is_some_and(|w| w != "any token") {
        b = b.response("403", error_response("the token's role may not do this"));
    }
    // Every path parameter of ours is checked by the extractor.
    let mut o = Op {
        method,
        path,
        op: b,
    };
    for name in path_params(path) {
        let (schema, desc) = match name {
            "external_id" => (s(str_len(1, 256)), "the item's external id"),
            "path" => (s(string()), "a file of the browser UI"),
            _ => (s(int().examples([1])), "an integer id"),
        };
        o.op = o.op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(desc))
                .schema(Some(schema)),
        );
        if name != "path" {
            o = o.err(400, "a path parameter is not an integer");
        }
    }
    o
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
}

fn error_response(desc: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(desc)
        .content(JSON, ContentBuilder::new().schema(Some(r("Error"))).build())
        .build()
}

impl Op {
    fn ok(mut self, status: u16, desc: &str, schema: impl Into<Schema>) -> Op {
        self.op = self.op.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(desc)
                .content(
                    JSON,
                    ContentBuilder::new().schema(Some(schema.into())).build(),
                )
                .build(),
        );
        self
    }
    fn ok_ref(self, status: u16, desc: &str, name: &str) -> Op {
        let schema = rs(name);
        let mut o = self;
        o.op = o.op.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(desc)
                .content(JSON, ContentBuilder::new().schema(Some(schema)).build())
                .build(),
        );
        o
    }
    fn ok_as(mut self, status: u16, desc: &str, content_types: &[&str]) -> Op {
        let mut b = ResponseBuilder::new().description(desc);
        for ct in content_types {
            b = b.content(*ct, ContentBuilder::new().schema(Some(string())).build());
        }
        self.op = self.op.response(status.to_string(), b.build());
        self
    }
    fn empty(mut self, status: u16, desc: &str) -> Op {
        self.op = self.op.response(
            status.to_string(),
            ResponseBuilder::new().description(desc).build(),
        );
        self
    }
    fn err(mut self, status: u16, desc: &str) -> Op {
        self.op = self.op.response(status.to_string(), error_response(desc));
        self
    }
    fn errs(self, list: &[(u16, &str)]) -> Op {
        list.iter().fold(self, |o, (st, d)| o.err(*st, d))
    }
    /// A JSON body (web::Json): 400 bad JSON, 413, 415.
    fn json_body(mut self, schema: RefOr<Schema>, required: bool) -> Op {
        self.op = self.op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(if required {
                    Required::True
                } else {
                    Required::False
                }))
                .content(JSON, ContentBuilder::new().schema(Some(schema)).build())
                .build(),
        ));
        self.errs(&[
            (
                400,
                "invalid JSON or a field out of range (`invalid_request`)",
            ),
            (413, "the body is too large"),
            (415, "Content-Type is not application/json"),
        ])
    }
    fn query(mut self, name: &str, schema: impl Into<Schema>, desc: &str) -> Op {
        self.op = self.op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(desc))
                .schema(Some(schema.into())),
        );
        self.err(400, "a bad query parameter (`invalid_request`)")
    }
}

const NO_PROJECT: (u16, &str) = (404, "no such project");

fn operations() -> Vec<Op> {
    use HttpMethod::{Delete, Get, Patch, Post};
    let leases = || props(open(), vec![("items", s(list(r("Lease"))))], &["items"]);
    let n_body = || {
        props(closed(), vec![("n", s(int_in(1, 50)))], &[])
            .description(Some("optional; an empty body means n = 1"))
    };
    let label_body = props(
        closed(),
        vec![
            (
                "label",
                s(string().description(Some("one of the project's labels"))),
            ),
            ("duration_ms", s(int_in(0, 86_400_000))),
        ],
        &["label"],
    );
    let predict_body = || {
        props(
            closed(),
            vec![
                (
                    "items",
                    s(list(r("PredictInput"))
                        .min_items(Some(1))
                        .max_items(Some(10_000))),
                ),
                ("enqueue", s(of(Type::Boolean))),
            ],
            &["items"],
        )
    };
    let prediction = props(
        open(),
        vec![
            ("label", s(string())),
            ("confidence", s(of(Type::Number))),
            (
                "probabilities",
                s(open().additional_properties(Some(of(Type::Number)))),
            ),
            ("route", s(one_of(&["auto", "review", "escalate"]))),
            ("item_id", s(or_null(Type::Integer))),
        ],
        &["label", "confidence", "probabilities", "route"],
    );
    let mut import_body = RequestBodyBuilder::new()
        .required(Some(Required::True))
        .description(Some(
            "A batch of items; a batch with any invalid row is rejected whole, \
             naming the first bad row (1-based).",
        ))
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(list(r("ItemInput"))))
                .build(),
        );
    for (ct, desc) in [
        ("application/x-ndjson", "one ItemInput JSON object per line"),
        (
            "text/csv",
            "a header row; columns external_id, text, label, meta (JSON) and either \
             `features` (numbers separated by spaces) or one column per feature",
        ),
    ] {
        import_body = import_body.content(
            ct,
            ContentBuilder::new()
                .schema(Some(string().description(Some(desc))))
                .build(),
        );
    }
    vec![
        // health.rs
        op(
            Get,
            "/healthz",
            "healthz",
            "Liveness and database check",
            None,
        )
        .ok(
            200,
            "the database answers",
            props(open(), vec![("status", s(one_of(&["ok"])))], &["status"]),
        )
        .err(503, "the database does not answer"),
        op(Get, "/metrics", "metrics", "Prometheus metrics", None).ok_as(
            200,
            "Prometheus text format",
            &["text/plain"],
        ),
        // ui.rs
        op(Get, "/", "ui_index", "The browser UI", None).ok_as(200, "index.html", &["text/html"]),
        op(Get, "/{path}", "ui_asset", "A file of the browser UI", None)
            .ok_as(
                200,
                "the file",
                &["text/html", "text/javascript", "text/css"],
            )
            .err(404, "no such file"),
        // openapi.rs
        op(
            Get,
            "/api/v1/openapi.json",
            "openapi",
            "This document",
            None,
        )
        .ok(200, "the OpenAPI document", open()),
        // tokens.rs
        op(
            Post,
            "/api/v1/tokens",
            "create_token",
            "Create a token",
            Some("admin"),
        )
        .json_body(
            s(props(
                closed(),
                vec![
                    ("name", s(str_len(1, 100))),
                    ("role", s(one_of(&ROLES))),
                    (
                        "senior",
                        s(of(Type::Boolean).description(Some("reviewer and admin tokens only"))),
                    ),
                ],
                &["name", "role"],
            )),
            true,
        )
        .ok_ref(201, "the token, with its secret", "Token"),
        op(
            Get,
            "/api/v1/tokens",
            "list_tokens",
            "List tokens (no secrets)",
            Some("admin"),
        )
        .ok(200, "every token", list(r("Token"))),
        op(
            Delete,
            "/api/v1/tokens/{id}",
            "revoke_token",
            "Revoke a token",
            Some("admin"),
        )
        .empty(204, "revoked")
        .errs(&[
            (404, "no such token"),
            (
                409,
                "the last live admin token (create another admin first)",
            ),
        ]),
        op(
            Get,
            "/api/v1/me",
            "me",
            "The caller's name and role",
            Some("any token"),
        )
        .ok(
            200,
            "the caller",
            props(
                open(),
                vec![
                    ("id", s(int())),
                    ("name", s(string())),
                    ("role", s(one_of(&ROLES))),
                    ("senior", s(of(Type::Boolean))),
                ],
                &["id", "name", "role"],
            ),
        ),
        // projects.rs
        op(
            Post,
            "/api/v1/projects",
            "create_project",
            "Create a project",
            Some("admin"),
        )
        .json_body(rs("NewProject"), true)
        .ok_ref(201, "the project", "Project")
        .err(409, "a project with this name exists"),
        op(
            Get,
            "/api/v1/projects",
            "list_projects",
            "List projects",
            Some("annotator, reviewer, service or admin"),
        )
        .ok(200, "every project", list(r("Project"))),
        op(
            Get,
            "/api/v1/projects/{pid}",
            "get_project",
            "A project",
            Some("annotator, reviewer, service or admin"),
        )
        .ok_ref(200, "the project", "Project")
        .errs(&[NO_PROJECT]),
        op(
            Patch,
            "/api/v1/projects/{pid}",
            "patch_project",
            "Change a project's settings",
            Some("admin"),
        )
        .json_body(rs("ProjectPatch"), true)
        .ok_ref(200, "the project", "Project")
        .errs(&[NO_PROJECT, (409, "a project with this name exists")]),
        // items.rs
        {
            let mut o = op(
                Post,
                "/api/v1/projects/{pid}/items",
                "import_items",
                "Import a batch of items",
                Some("admin"),
            );
            o.op = o.op.request_body(Some(import_body.build()));
            o.ok(
                200,
                "the batch was stored",
                props(
                    open(),
                    vec![
                        ("inserted", s(int())),
                        ("duplicates", s(int())),
                        ("labeled", s(int())),
                    ],
                    &["inserted", "duplicates", "labeled"],
                ),
            )
            .errs(&[
                (400, "a row is invalid (`invalid_request`, naming the row)"),
                NO_PROJECT,
                (413, "the body is larger than --max-import-bytes"),
                (415, "Content-Type is not JSON, NDJSON or CSV"),
            ])
        },
        op(
            Get,
            "/api/v1/projects/{pid}/items",
            "list_items",
            "Items of a project, by id",
            Some("annotator, reviewer, service or admin"),
        )
        .query(
            "status",
            one_of(&["unlabeled", "labeled", "review"]),
            "only items in this status",
        )
        .query(
            "limit",
            int_in(1, 1000).default(Some(100.into())),
            "page size",
        )
        .query("after", int(), "the `next` of the previous page")
        .ok(
            200,
            "a page",
            props(
                open(),
                vec![
                    ("items", s(list(r("Item")))),
                    ("next", s(or_null(Type::Integer))),
                ],
                &["items", "next"],
            ),
        )
        .errs(&[NO_PROJECT]),
        op(
            Get,
            "/api/v1/projects/{pid}/items/by-external/{external_id}",
            "get_item_by_external",
            "An item by its external id",
            Some("annotator, reviewer, service or admin"),
        )
        .ok_ref(200, "the item", "Item")
        .err(404, "no such project or item"),
        op(
            Get,
            "/api/v1/projects/{pid}/items/{item_id}",
            "get_item",
            "An item",
            Some("annotator, reviewer, service or admin"),
        )
        .ok_ref(200, "the item", "Item")
        .err(404, "no such project or item"),
        // gold.rs
        op(
            Post,
            "/api/v1/projects/{pid}/gold",
            "add_gold",
            "Add gold items (known answers mixed into review)",
            Some("admin"),
        )
        .json_body(
            s(list(r("GoldInput"))
                .min_items(Some(1))
                .max_items(Some(10_000))),
            true,
        )
        .ok(
            200,
            "inserted and duplicate counts",
            props(
                open(),
                vec![
                    ("inserted", s(int())),
                    ("duplicates", s(int())),
                    ("wrong_suggestions", s(int())),
                ],
                &["inserted", "duplicates", "wrong_suggestions"],
            ),
        )
        .errs(&[NO_PROJECT]),
        // queue.rs
        op(
            Post,
            "/api/v1/projects/{pid}/queue/next",
            "queue_next",
            "Lease the most informative unlabeled items",
            Some("annotator, reviewer or admin"),
        )
        .json_body(s(n_body()), false)
        .ok(
            200,
            "leased items, most informative first (empty when none is left)",
            leases(),
        )
        .errs(&[NO_PROJECT]),
        op(
            Post,
            "/api/v1/projects/{pid}/queue/review",
            "queue_review",
            "Lease review cases (escalated ones to senior reviewers)",
            Some("reviewer or admin"),
        )
        .json_body(s(n_body()), false)
        .ok(200, "leased review items", leases())
        .errs(&[NO_PROJECT]),
        op(
            Post,
            "/api/v1/projects/{pid}/queue/release",
            "queue_release",
            "Give back the caller's own leases",
            Some("annotator, reviewer or admin"),
        )
        .json_body(
            s(props(
                closed(),
                vec![("item_ids", s(list(int()).max_items(Some(1000))))],
                &["item_ids"],
            )),
            true,
        )
        .empty(204, "released")
        .errs(&[NO_PROJECT]),
        op(
            Post,
            "/api/v1/projects/{pid}/items/{item_id}/labels",
            "create_label",
            "Label an item",
            Some("annotator, reviewer or admin (review items: reviewer; escalated: senior)"),
        )
        .json_body(s(label_body), true)
        .ok_ref(201, "the label, durable", "Label")
        .errs(&[
            (404, "no such project or item"),
            (
                409,
                "leased to someone else, already labelled by the caller, or (one label \
                 per item) labelled by someone else: reviewers change it",
            ),
        ]),
        op(
            Delete,
            "/api/v1/projects/{pid}/labels/{label_id}",
            "undo_label",
            "Undo a label",
            Some("the label's author or an admin"),
        )
        .empty(204, "undone")
        .errs(&[
            (404, "no such project or label"),
            (
                409,
                "the label was already undone, or replaced by a later label",
            ),
        ]),
        // models.rs
        op(
            Post,
            "/api/v1/projects/{pid}/train",
            "train",
            "Train a model now",
            Some("admin"),
        )
        .query(
            "wait",
            of(Type::Boolean),
            "answer when the training is done",
        )
        .ok(
            202,
            "started",
            props(
                open(),
                vec![("status", s(one_of(&["started"])))],
                &["status"],
            ),
        )
        .ok_ref(201, "trained (`wait=true`)", "ModelVersion")
        .errs(&[
            NO_PROJECT,
            (409, "labels of fewer than 2 classes (`not_enough_labels`)"),
        ]),
        op(
            Get,
            "/api/v1/projects/{pid}/models",
            "list_models",
            "Model versions, newest first",
            Some("annotator, reviewer, service or admin"),
        )
        .ok(200, "every version", list(r("ModelVersion")))
        .errs(&[NO_PROJECT]),
        op(
            Get,
            "/api/v1/projects/{pid}/models/active",
            "active_model",
            "The active model version",
            Some("annotator, reviewer, service or admin"),
        )
        .ok_ref(200, "the active version", "ModelVersion")
        .err(404, "no such project, or no model yet"),
        // predict.rs
        {
            let mut o = op(
                Post,
                "/api/v1/projects/{pid}/predict",
                "predict",
                "Predict and route",
                Some("service or admin"),
            )
            .json_body(s(predict_body()), true)
            .query(
                "output",
                one_of(&["predictions", "probabilities"]),
                "the form of an .npy answer (`Accept: application/x-npy`): `predictions` \
                 (the default) a structured array, `probabilities` the probabilities alone \
                 as a 2-D `<f8` array, items × project labels, like scikit-learn's \
                 `predict_proba`",
            );
            // The same operation takes a NumPy array (features-only projects).
            o.op = o.op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(JSON, ContentBuilder::new().schema(Some(s(predict_body()))).build())
                    .content(
                        "application/x-npy",
                        ContentBuilder::new()
                            .schema(Some(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))).description(Some(
                                "A NumPy .npy file: a 2-D float64 or float32 array, items × \
                                 features, of a features-only project (C or Fortran order, \
                                 up to 100,000 items). Routed by the thresholds alone; \
                                 nothing is enqueued.",
                            ))))
                            .build(),
                    )
                    .build(),
            ));
            o.op = o.op.response(
                "200",
                ResponseBuilder::new()
                    .description(
                        "one prediction per item, in order; with `Accept: application/x-npy` \
                         (for an .npy body) one structured array of records (label `<U…`, \
                         confidence `<f8`, route `<U8`, probabilities `<f8` per project \
                         label in the project's order), with `output=probabilities` \
                         the probabilities alone (items × labels, `<f8`); the version in \
                         `Loupe-Model-Version`",
                    )
                    .content(
                        JSON,
                        ContentBuilder::new()
                            .schema(Some(props(
                                open(),
                                vec![
                                    ("model_version", s(int())),
                                    ("predictions", s(list(prediction))),
                                ],
                                &["model_version", "predictions"],
                            )))
                            .build(),
                    )
                    .content(
                        "application/x-npy",
                        ContentBuilder::new()
                            .schema(Some(
                                string()
                                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
                            ))
                            .build(),
                    )
                    .build(),
            );
            o.errs(&[
                NO_PROJECT,
                (
                    409,
                    "no model has been trained yet (`no_model`), or with `enqueue` an \
                     external_id that names an item with other content (`conflict`)",
                ),
                (415, "an .npy body for a project whose model reads text"),
            ])
        },
        // stats.rs
        op(
            Get,
            "/api/v1/projects/{pid}/stats",
            "stats",
            "Project statistics",
            Some("annotator, reviewer or admin"),
        )
        .ok(
            200,
            "the statistics",
            props(
                open(),
                vec![
                    ("counts", rs("Counts")),
                    ("label_distribution", s(open())),
                    ("label_sources", s(open())),
                    ("label_selections", s(open())),
                    ("learning_curve", s(list(open()))),
                    ("override_rate", s(or_null(Type::Number))),
                    ("annotators", s(any())),
                    ("stopping", s(open())),
                    ("confidence_histogram", s(open())),
                    ("routing_volumes", s(list(open()))),
                    ("overrides", s(open())),
                    ("confident_and_wrong", s(list(open()))),
                    ("audit", s(open())),
                    ("reviewers", s(any())),
                    ("active_model", s(or_null(Type::Integer))),
                    ("labels_since_active_model", s(int())),
                ],
                &[
                    "counts",
                    "label_distribution",
                    "learning_curve",
                    "override_rate",
                    "annotators",
                ],
            ),
        )
        .errs(&[NO_PROJECT]),
        op(
            Get,
            "/api/v1/projects/{pid}/export",
            "export",
            "Every labelled item with its final label, streamed",
            Some("admin"),
        )
        .query(
            "format",
            one_of(&["jsonl", "csv"]).default(Some("jsonl".into())),
            "the file format",
        )
        .ok_as(200, "the export", &["application/x-ndjson", "text/csv"])
        .errs(&[NO_PROJECT]),
    ]
}

/// The whole document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for o in operations() {
        paths.add_path_operation(o.path, vec![o.method], o.op.build());
    }
    let mut components = ComponentsBuilder::new().security_scheme(
        BEARER,
        SecurityScheme::Http({
            let mut h = Http::new(HttpAuthScheme::Bearer);
            h.description = Some(
                "`Authorization: Bearer <token>`; tokens are created by an admin \
                     (`POST /api/v1/tokens`)."
                    .into(),
            );
            h
        }),
    );
    for (name, schema) in schemas() {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("loupe")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "An active-learning labeling server. Every non-2xx answer has the body \
                     `{\"error\": {\"code\", \"message\"}}` with a stable code.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}
