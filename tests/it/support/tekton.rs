//! Tekton, run for real on the lab's machine: TaskRuns and PipelineRuns of the templates' Tasks
//! and Pipelines executed the way Tekton Pipelines executes them (tektoncd/pipeline v1 API,
//! `pkg/pod`, `pkg/reconciler`), each step in a [`PodFs`].
//!
//! - Variables are substituted as Tekton substitutes them, in `script`, `args`, `command`,
//!   `env[].value` and `workingDir`: `$(params.NAME)` (also `$(params['NAME'])`), a Task's
//!   `$(results.NAME.path)` (`/tekton/results/NAME`), `$(workspaces.NAME.path|bound|claim)`,
//!   `$(context.taskRun.name|namespace|uid)`, `$(context.pipelineRun.name)`,
//!   `$(context.task.name)`; in a Pipeline, `$(params.NAME)`, `$(params.NAME[*])` and
//!   `$(tasks.TASK.results.NAME)`. A reference to anything not declared is refused, as Tekton's
//!   validation refuses it; so is a param the Task does not declare, or a required one missing.
//! - A script without `#!` gets Tekton's preamble `#!/bin/sh` + `set -e`; it is written to
//!   `/tekton/scripts/script-<step>-<id>` and run as the step's command; `workingDir` defaults
//!   to `/workspace`. Steps run one after the other; a failed step fails the TaskRun.
//! - Volumes: the Task's `volumes` (ConfigMaps, Secrets by name from the [`Cluster`], emptyDirs),
//!   workspaces at `/workspace/NAME` (or their `mountPath`), the ServiceAccount's token at
//!   `/var/run/secrets/kubernetes.io/serviceaccount`, `/tekton/results` writable. Results are
//!   read back from `/tekton/results` (at most 4096 bytes in all: the termination message).
//! - A Pipeline's tasks run in order; a `matrix` fans a task out over the product of its array
//!   params, one TaskRun each (`<run>-<task>-<i>`), all at once; `retries` runs a failed
//!   TaskRun again in a new pod.
//!
//! Why one file (about 700 lines): it is one executor, written after one part of Tekton
//! (`pkg/pod` and the TaskRun/PipelineRun reconcilers): substitution, validation, volumes,
//! steps and results are applied in Tekton's order in `Cluster`'s run methods, and a
//! PipelineRun is those TaskRuns in sequence; the pieces have no use apart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;

use super::Output;
use super::pod::{PodFs, Volume};

/// A Tekton param value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Str(String),
    Array(Vec<String>),
}

impl Param {
    pub fn str(s: &str) -> Param {
        Param::Str(s.to_string())
    }

    fn from_json(v: &Value) -> Result<Param, String> {
        match v {
            Value::String(s) => Ok(Param::Str(s.clone())),
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("array param item {x} is not a string"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Param::Array),
            other => Err(format!(
                "param value {other} is neither a string nor an array"
            )),
        }
    }
}

/// What a workspace is bound to.
#[derive(Clone, Debug)]
pub enum Workspace {
    ConfigMap(String),
    Secret(String),
    /// A claim: a folder of the machine, shared by every pod that binds it.
    Claim(PathBuf),
    EmptyDir,
}

/// Objects of the namespace that pods mount, by name.
#[derive(Default, Clone)]
pub struct Cluster {
    pub namespace: String,
    pub config_maps: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    pub secrets: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    /// ServiceAccount → the files of its token volume (`token`, `ca.crt`, `service-ca.crt`,
    /// `namespace`).
    pub service_accounts: BTreeMap<String, Vec<(String, Vec<u8>)>>,
}

/// A TaskRun to run.
pub struct TaskRun<'a> {
    pub name: String,
    pub task: &'a Value,
    pub params: Vec<(String, Param)>,
    pub workspaces: Vec<(String, Workspace)>,
    pub service_account: String,
    pub pipeline_run: Option<String>,
}

/// What a TaskRun did.
#[derive(Debug)]
pub struct TaskRunResult {
    pub name: String,
    pub succeeded: bool,
    /// Why it did not run or failed (validation, a missing volume, a step's exit).
    pub reason: Option<String>,
    pub results: BTreeMap<String, String>,
    /// The steps' outputs, of the last attempt.
    pub steps: Vec<Output>,
    pub attempts: usize,
}

/// `$(…)` references Tekton resolves.
fn references() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"\$\(((?:params|results|workspaces|context|tasks|steps)(?:\.|\[)[^()]*)\)"#)
            .unwrap()
    })
}

/// `params['X']` / `params["X"]` → `params.X`.
fn normalise(key: &str) -> String {
    let re = Regex::new(r#"^params\[['"]([^'"]+)['"]\](.*)$"#).unwrap();
    match re.captures(key) {
        Some(c) => format!("params.{}{}", &c[1], &c[2]),
        None => key.to_string(),
    }
}

/// Substitute every Tekton reference of `text`; an unknown one is an error.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut err = None;
    let out = references().replace_all(text, |c: &regex::Captures<'_>| {
        let key = normalise(&c[1]);
        match vars.get(&key) {
            Some(v) => v.clone(),
            None => {
                err.get_or_insert_with(|| format!("non-existent variable in {:?}", &c[0]));
                c[0].to_string()
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out.into_owned()),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Files of a volume: (name, bytes).
type NamedFiles = Vec<(String, Vec<u8>)>;

/// A step to run: its argv, its environment, its name.
type Step = (Vec<String>, Vec<(String, String)>, String);

impl Cluster {
    fn volume_files(&self, vol: &Value) -> Result<Option<(NamedFiles, Volume)>, String> {
        if let Some(cm) = vol.get("configMap") {
            let name = cm["name"].as_str().unwrap_or_default();
            return match self.config_maps.get(name) {
                Some(f) => Ok(Some((f.clone(), Volume::Projected))),
                None if cm["optional"] == true => Ok(Some((Vec::new(), Volume::Projected))),
                None => Err(format!("configmap {name:?} not found")),
            };
        }
        if let Some(s) = vol.get("secret") {
            let name = s["secretName"].as_str().unwrap_or_default();
            return match self.secrets.get(name) {
                Some(f) => Ok(Some((f.clone(), Volume::Projected))),
                None if s["optional"] == true => Ok(Some((Vec::new(), Volume::Projected))),
                None => Err(format!("secret {name:?} not found")),
            };
        }
        if vol.get("emptyDir").is_some() {
            return Ok(Some((Vec::new(), Volume::Writable)));
        }
        Err(format!("volume {vol} of an unsupported kind"))
    }

    /// Run a TaskRun: validate it, then run its steps in a new pod.
    pub fn run_task(&self, tr: &TaskRun<'_>) -> TaskRunResult {
        let fail = |reason: String| TaskRunResult {
            name: tr.name.clone(),
            succeeded: false,
            reason: Some(reason),
            results: BTreeMap::new(),
            steps: Vec::new(),
            attempts: 1,
        };
        match self.prepare(tr) {
            Ok((pod, steps, claims)) => self.run_steps(tr, pod, steps, claims),
            Err(e) => fail(e),
        }
    }

    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        tr: &TaskRun<'_>,
    ) -> Result<
        (
            PodFs,
            Vec<(Vec<String>, Vec<(String, String)>, String)>,
            Vec<(PathBuf, PathBuf)>,
        ),
        String,
    > {
        let task = tr.task;
        if task["apiVersion"] != "tekton.dev/v1" || task["kind"] != "Task" {
            return Err("not a tekton.dev/v1 Task".into());
        }
        let spec = &task["spec"];
        let mut vars = BTreeMap::new();
        // Params: declared ones only; defaults; required ones given.
        let declared: Vec<&Value> = spec["params"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        for (name, _) in &tr.params {
            if !declared.iter().any(|p| p["name"] == name.as_str()) {
                return Err(format!("param {name:?} is not declared by the Task"));
            }
        }
        for p in &declared {
            let name = p["name"].as_str().unwrap_or_default();
            let value = match tr.params.iter().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => match p.get("default") {
                    Some(d) => Param::from_json(d)?,
                    None => return Err(format!("missing param {name:?}")),
                },
            };
            match value {
                Param::Str(s) => {
                    vars.insert(format!("params.{name}"), s);
                }
                Param::Array(a) => {
                    vars.insert(format!("params.{name}[*]"), a.join(" "));
                }
            }
        }
        for r in spec["results"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or_default();
            vars.insert(
                format!("results.{name}.path"),
                format!("/tekton/results/{name}"),
            );
        }
        let pod = PodFs::new();
        pod.volume("/tekton/results", &[], Volume::Writable);
        pod.volume("/tekton/scripts", &[], Volume::Writable);
        pod.volume("/workspace", &[], Volume::Writable);
        let mut claims = Vec::new();
        for w in spec["workspaces"].as_array().into_iter().flatten() {
            let name = w["name"].as_str().unwrap_or_default();
            let path = w["mountPath"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("/workspace/{name}"));
            let bound = tr.workspaces.iter().find(|(n, _)| n == name);
            vars.insert(
                format!("workspaces.{name}.bound"),
                bound.is_some().to_string(),
            );
            match bound {
                None if w["optional"] == true => {
                    vars.insert(format!("workspaces.{name}.path"), String::new());
                    vars.insert(format!("workspaces.{name}.claim"), String::new());
                }
                None => return Err(format!("workspace {name:?} is not bound")),
                Some((_, binding)) => {
                    vars.insert(format!("workspaces.{name}.path"), path.clone());
                    vars.insert(format!("workspaces.{name}.claim"), String::new());
                    match binding {
                        Workspace::ConfigMap(n) => {
                            let f = self
                                .config_maps
                                .get(n)
                                .ok_or(format!("configmap {n:?} not found"))?;
                            pod.volume(&path, f, Volume::Projected);
                        }
                        Workspace::Secret(n) => {
                            let f = self
                                .secrets
                                .get(n)
                                .ok_or(format!("secret {n:?} not found"))?;
                            pod.volume(&path, f, Volume::Projected);
                        }
                        Workspace::EmptyDir => pod.volume(&path, &[], Volume::Writable),
                        Workspace::Claim(dir) => {
                            vars.insert(format!("workspaces.{name}.claim"), "claim".into());
                            claims.push(pod.shared(&path, dir));
                        }
                    }
                }
            }
        }
        for (name, _) in &tr.workspaces {
            if !spec["workspaces"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|w| w["name"] == name.as_str())
            {
                return Err(format!("workspace {name:?} is not declared by the Task"));
            }
        }
        let task_name = task["metadata"]["name"].as_str().unwrap_or_default();
        vars.insert("context.taskRun.name".into(), tr.name.clone());
        vars.insert("context.taskRun.namespace".into(), self.namespace.clone());
        vars.insert("context.taskRun.uid".into(), super::random_hex(8));
        vars.insert("context.task.name".into(), task_name.to_string());
        if let Some(pr) = &tr.pipeline_run {
            vars.insert("context.pipelineRun.name".into(), pr.clone());
        }
        // The ServiceAccount's token.
        let sa = self
            .service_accounts
            .get(&tr.service_account)
            .ok_or(format!("serviceaccount {:?} not found", tr.service_account))?;
        pod.volume(
            "/var/run/secrets/kubernetes.io/serviceaccount",
            sa,
            Volume::Projected,
        );
        let volumes: BTreeMap<&str, &Value> = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (v["name"].as_str().unwrap_or_default(), v))
            .collect();
        let mut steps = Vec::new();
        for (i, step) in spec["steps"].as_array().into_iter().flatten().enumerate() {
            for m in step["volumeMounts"].as_array().into_iter().flatten() {
                let name = m["name"].as_str().unwrap_or_default();
                let vol = volumes
                    .get(name)
                    .ok_or(format!("volumeMount {name:?} names no volume"))?;
                if let Some((files, kind)) = self.volume_files(vol)? {
                    pod.volume(m["mountPath"].as_str().unwrap_or_default(), &files, kind);
                }
            }
            let mut env = Vec::new();
            for e in step["env"].as_array().into_iter().flatten() {
                let value = substitute(e["value"].as_str().unwrap_or_default(), &vars)?;
                env.push((e["name"].as_str().unwrap_or_default().to_string(), value));
            }
            let mut argv: Vec<String> = Vec::new();
            if let Some(script) = step["script"].as_str() {
                if step.get("command").is_some() {
                    return Err("a step has both script and command".into());
                }
                let mut script = substitute(script, &vars)?;
                if !script.starts_with("#!") {
                    script = format!("#!/bin/sh\nset -e\n{script}");
                }
                let path = format!("/tekton/scripts/script-{i}-{}", super::random_hex(3));
                let host = pod.path(&path);
                std::fs::write(&host, script).unwrap();
                std::fs::set_permissions(
                    &host,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .unwrap();
                argv.push(path);
            } else {
                for c in strings(&step["command"]) {
                    argv.push(substitute(c, &vars)?);
                }
            }
            for a in strings(&step["args"]) {
                argv.push(substitute(a, &vars)?);
            }
            let workdir = match step["workingDir"].as_str() {
                Some(w) => substitute(w, &vars)?,
                None => "/workspace".into(),
            };
            steps.push((argv, env, workdir));
        }
        Ok((pod, steps, claims))
    }

    fn run_steps(
        &self,
        tr: &TaskRun<'_>,
        pod: PodFs,
        steps: Vec<Step>,
        claims: Vec<(PathBuf, PathBuf)>,
    ) -> TaskRunResult {
        let mut outputs = Vec::new();
        let mut reason = None;
        for (argv, env, workdir) in steps {
            let out = pod
                .spawn(&argv, &env, &workdir, &claims)
                .wait(super::tools::DEFAULT_TIMEOUT);
            let ok = out.success();
            outputs.push(out);
            if !ok {
                reason = Some(format!("step {} failed", outputs.len() - 1));
                break;
            }
        }
        let mut results = BTreeMap::new();
        let mut size = 0;
        for r in tr.task["spec"]["results"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or_default();
            if let Some(b) = pod.read(&format!("/tekton/results/{name}")) {
                size += b.len();
                results.insert(name.to_string(), String::from_utf8_lossy(&b).into_owned());
            }
        }
        if size > 4096 && reason.is_none() {
            reason = Some(format!(
                "results take {size} bytes, more than the 4096 of a termination message"
            ));
        }
        TaskRunResult {
            name: tr.name.clone(),
            succeeded: reason.is_none(),
            reason,
            results,
            steps: outputs,
            attempts: 1,
        }
    }

    /// Run a PipelineRun of `pipeline` whose tasks are among `tasks`.
    pub fn run_pipeline(
        &self,
        pipeline: &Value,
        tasks: &[&Value],
        run: &PipelineRun,
    ) -> PipelineRunResult {
        let mut result = PipelineRunResult {
            succeeded: false,
            reason: None,
            task_runs: Vec::new(),
            results: BTreeMap::new(),
        };
        match self.pipeline(pipeline, tasks, run, &mut result) {
            Ok(()) => result.succeeded = true,
            Err(e) => result.reason = Some(e),
        }
        result
    }

    fn pipeline(
        &self,
        pipeline: &Value,
        tasks: &[&Value],
        run: &PipelineRun,
        out: &mut PipelineRunResult,
    ) -> Result<(), String> {
        if pipeline["apiVersion"] != "tekton.dev/v1" || pipeline["kind"] != "Pipeline" {
            return Err("not a tekton.dev/v1 Pipeline".into());
        }
        let spec = &pipeline["spec"];
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        let mut arrays: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let declared: Vec<&Value> = spec["params"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        for (name, _) in &run.params {
            if !declared.iter().any(|p| p["name"] == name.as_str()) {
                return Err(format!("param {name:?} is not declared by the Pipeline"));
            }
        }
        for p in &declared {
            let name = p["name"].as_str().unwrap_or_default();
            let value = match run.params.iter().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => match p.get("default") {
                    Some(d) => Param::from_json(d)?,
                    None => return Err(format!("missing param {name:?}")),
                },
            };
            match value {
                Param::Str(s) => {
                    vars.insert(format!("params.{name}"), s);
                }
                Param::Array(a) => {
                    arrays.insert(format!("params.{name}[*]"), a);
                }
            }
        }
        vars.insert("context.pipelineRun.name".into(), run.name.clone());
        for pt in spec["tasks"].as_array().into_iter().flatten() {
            let pt_name = pt["name"].as_str().unwrap_or_default().to_string();
            let task_name = pt["taskRef"]["name"].as_str().unwrap_or_default();
            let task = tasks
                .iter()
                .find(|t| t["metadata"]["name"] == task_name)
                .ok_or(format!("task {task_name:?} not found"))?;
            let param_value = |v: &Value| -> Result<Param, String> {
                match v {
                    Value::String(s) => {
                        match arrays.get(s.trim_start_matches("$(").trim_end_matches(')')) {
                            Some(a) if s.starts_with("$(") && s.ends_with("[*])") => {
                                Ok(Param::Array(a.clone()))
                            }
                            _ => substitute(s, &vars).map(Param::Str),
                        }
                    }
                    Value::Array(items) => items
                        .iter()
                        .map(|i| substitute(i.as_str().unwrap_or_default(), &vars))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Param::Array),
                    other => Err(format!("param value {other}")),
                }
            };
            let mut params = Vec::new();
            for p in pt["params"].as_array().into_iter().flatten() {
                params.push((
                    p["name"].as_str().unwrap_or_default().to_string(),
                    param_value(&p["value"])?,
                ));
            }
            // The matrix: one TaskRun per combination of its array params' items.
            let mut combos: Vec<Vec<(String, Param)>> = vec![Vec::new()];
            for p in pt["matrix"]["params"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default().to_string();
                let Param::Array(items) = param_value(&p["value"])? else {
                    return Err(format!("matrix param {name:?} is not an array"));
                };
                let mut next = Vec::new();
                for c in &combos {
                    for i in &items {
                        let mut c = c.clone();
                        c.push((name.clone(), Param::Str(i.clone())));
                        next.push(c);
                    }
                }
                combos = next;
            }
            let mut workspaces = Vec::new();
            for w in pt["workspaces"].as_array().into_iter().flatten() {
                let from = w["workspace"].as_str().unwrap_or_default();
                let declared = spec["workspaces"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| d["name"] == from);
                let Some(declared) = declared else {
                    return Err(format!(
                        "workspace {from:?} is not declared by the Pipeline"
                    ));
                };
                match run.workspaces.iter().find(|(n, _)| n == from) {
                    Some((_, b)) => workspaces.push((
                        w["name"].as_str().unwrap_or_default().to_string(),
                        b.clone(),
                    )),
                    None if declared["optional"] == true => {}
                    None => return Err(format!("workspace {from:?} is not bound")),
                }
            }
            let retries = pt["retries"].as_u64().unwrap_or(0) as usize;
            let matrixed = pt.get("matrix").is_some();
            let runs: Vec<TaskRunResult> = std::thread::scope(|s| {
                let handles: Vec<_> = combos
                    .iter()
                    .enumerate()
                    .map(|(i, combo)| {
                        let mut params = params.clone();
                        params.extend(combo.iter().cloned());
                        let name = if matrixed {
                            format!("{}-{pt_name}-{i}", run.name)
                        } else {
                            format!("{}-{pt_name}", run.name)
                        };
                        let tr = TaskRun {
                            name,
                            task,
                            params,
                            workspaces: workspaces.clone(),
                            service_account: run.service_account.clone(),
                            pipeline_run: Some(run.name.clone()),
                        };
                        s.spawn(move || {
                            let mut attempt = 0;
                            loop {
                                attempt += 1;
                                let mut r = self.run_task(&tr);
                                r.attempts = attempt;
                                if r.succeeded || attempt > retries {
                                    return r;
                                }
                            }
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let failed: Vec<String> = runs
                .iter()
                .filter(|r| !r.succeeded)
                .map(|r| format!("{}: {}", r.name, r.reason.clone().unwrap_or_default()))
                .collect();
            for r in &runs {
                if !matrixed {
                    for (k, v) in &r.results {
                        vars.insert(format!("tasks.{pt_name}.results.{k}"), v.clone());
                    }
                }
            }
            out.task_runs
                .extend(runs.into_iter().map(|r| (pt_name.clone(), r)));
            if !failed.is_empty() {
                return Err(format!("task {pt_name} failed: {}", failed.join("; ")));
            }
        }
        for r in spec["results"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or_default();
            out.results.insert(
                name.to_string(),
                substitute(r["value"].as_str().unwrap_or_default(), &vars)?,
            );
        }
        Ok(())
    }
}

/// A PipelineRun to run.
pub struct PipelineRun {
    pub name: String,
    pub params: Vec<(String, Param)>,
    pub workspaces: Vec<(String, Workspace)>,
    /// `taskRunTemplate.serviceAccountName`.
    pub service_account: String,
}

impl PipelineRun {
    /// From a PipelineRun object (what a TriggerTemplate creates): its params and
    /// ServiceAccount; workspaces as given.
    pub fn from_object(
        o: &Value,
        workspaces: Vec<(String, Workspace)>,
    ) -> Result<PipelineRun, String> {
        let meta = &o["metadata"];
        let name = meta["name"]
            .as_str()
            .or(meta["generateName"].as_str())
            .ok_or("a PipelineRun without a name")?
            .trim_end_matches('-')
            .to_string();
        let params = o["spec"]["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                Ok((
                    p["name"].as_str().unwrap_or_default().to_string(),
                    Param::from_json(&p["value"])?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(PipelineRun {
            name,
            params,
            workspaces,
            service_account: o["spec"]["taskRunTemplate"]["serviceAccountName"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
        })
    }
}

/// What a PipelineRun did.
#[derive(Debug)]
pub struct PipelineRunResult {
    pub succeeded: bool,
    pub reason: Option<String>,
    /// (pipeline task, its TaskRun), in order.
    pub task_runs: Vec<(String, TaskRunResult)>,
    pub results: BTreeMap<String, String>,
}

#[test]
fn substitution_as_tekton() {
    let mut vars = BTreeMap::new();
    vars.insert("params.A".to_string(), "1".to_string());
    vars.insert(
        "results.R.path".to_string(),
        "/tekton/results/R".to_string(),
    );
    assert_eq!(
        substitute("x $(params.A) $(params['A']) $(params[\"A\"])", &vars).unwrap(),
        "x 1 1 1"
    );
    assert_eq!(
        substitute("$(results.R.path)", &vars).unwrap(),
        "/tekton/results/R"
    );
    assert!(
        substitute("$(params.B)", &vars)
            .unwrap_err()
            .contains("non-existent")
    );
    // Shell's own $(…) is not Tekton's.
    assert_eq!(
        substitute("$(date) $((1+2))", &vars).unwrap(),
        "$(date) $((1+2))"
    );
}
