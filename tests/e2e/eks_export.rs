//! The cluster a backup exports (add-ons, access entries with their policies, pod identity associations,
//! node groups' launch templates) and the rebuild a drill plans from it; add-ons and access entries
//! through provision.

use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_statemachines::{Description, Status};
use serde_json::{Value, json};

use crate::harness::World;

use crate::backup::Plane;
use crate::drill::run_drill;
use crate::provision::{Stage, assert_succeeded, healthy_endpoint};

const ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admins";
const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

/// The cluster as the succeeded `backup` exported it (`eks.json`), found through its manifest.
pub async fn exported_cluster(world: &World, backup: &Description) -> Value {
    let object = |key: String| async move {
        let got = world
            .clients
            .s3
            .get_object()
            .bucket(&world.config.bucket_name)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e}"));
        got.body
            .collect()
            .await
            .expect("the object's body")
            .to_vec()
    };
    let manifest_key = backup.output.as_ref().unwrap()["manifest"]["manifest_key"]
        .as_str()
        .expect("the manifest's key")
        .to_owned();
    let manifest: opsplane_shared::domain::backup::Manifest =
        serde_json::from_slice(&object(manifest_key).await).unwrap();
    let key = manifest
        .objects
        .iter()
        .find(|o| o.key.ends_with("/eks.json"))
        .expect("the export, vouched for by the manifest")
        .key
        .clone();
    serde_json::from_slice(&object(key).await).unwrap()
}

/// What the platform team did by hand on the seeded cluster: two add-ons (vpc-cni one version behind the
/// spec), an admin access entry and a pod identity association.
async fn extend_by_hand(plane: &Plane, cluster: &str) {
    let eks = &plane.world.clients.eks;
    for (name, version) in [
        ("vpc-cni", "v1.18.3-eksbuild.1"),
        ("coredns", "v1.11.1-eksbuild.9"),
    ] {
        eks.create_addon()
            .cluster_name(cluster)
            .addon_name(name)
            .addon_version(version)
            .send()
            .await
            .expect("create add-on");
    }
    eks.create_access_entry()
        .cluster_name(cluster)
        .principal_arn(ADMIN)
        .send()
        .await
        .expect("create access entry");
    eks.associate_access_policy()
        .cluster_name(cluster)
        .principal_arn(ADMIN)
        .policy_arn(ADMIN_POLICY)
        .access_scope(
            aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .expect("associate policy");
    eks.create_pod_identity_association()
        .cluster_name(cluster)
        .namespace("kube-system")
        .service_account("ebs-csi-controller-sa")
        .role_arn("arn:aws:iam::123456789012:role/ebs-csi")
        .send()
        .await
        .expect("pod identity");
}

#[tokio::test]
async fn the_export_holds_add_ons_access_and_pod_identity_and_a_drill_plans_the_rebuild() {
    let plane = Plane::new("eks-addons.yaml", ProbeSettings::default()).await;
    let cluster = format!("{}-eks", plane.env);
    extend_by_hand(&plane, &cluster).await;

    let backup = plane.run_backup().await;
    assert_eq!(backup.status, Status::Succeeded, "{:?}", backup.cause);
    let export = exported_cluster(&plane.world, &backup).await;
    assert_eq!(export["addons"]["vpc-cni"]["version"], "v1.18.3-eksbuild.1");
    assert_eq!(export["addons"]["coredns"]["status"], "ACTIVE");
    assert_eq!(
        export["accessEntries"][ADMIN]["policies"][0]["policy_arn"],
        ADMIN_POLICY
    );
    let pods = export["podIdentityAssociations"].as_array().unwrap();
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["serviceAccount"], "ebs-csi-controller-sa");
    let ng = &export["nodegroups"][0];
    assert!(ng.get("launchTemplate").is_some(), "{ng}");
    assert_eq!(export["planned"]["name"], cluster);

    // The drill restores the database and plans the cluster's rebuild against the spec: vpc-cni would go
    // one version up, nothing blocks.
    let drill = run_drill(&plane, json!({ "environment": plane.env })).await;
    assert_eq!(drill.status, Status::Succeeded, "{:?}", drill.cause);
    let out = drill.output.as_ref().unwrap();
    let checks = out["verify"]["checks"].as_array().unwrap();
    let rebuild = checks
        .iter()
        .find(|c| c["name"] == opsplane_fn_backup::drill::REBUILD_CHECK)
        .expect("the rebuild plan");
    assert_eq!(rebuild["passed"], true, "{rebuild}");
    let detail = rebuild["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "addon:{cluster}/vpc-cni version: v1.18.3-eksbuild.1 -> v1.19.0-eksbuild.1"
        )),
        "{detail}"
    );
    assert!(!detail.contains("coredns"), "{detail}");
    assert!(plane.lock_is_free().await);
}

#[tokio::test]
async fn add_ons_and_access_entries_are_provisioned_upgraded_with_approval_and_never_downgraded() {
    let stage = Stage::new().await;
    let url = healthy_endpoint().await;
    let with = |cni: &str| {
        stage.example("dev", &url).replace(
            "  nodegroups:\n",
            &format!(
                "  addons:\n    vpc-cni: {{ version: {cni}, configuration: {{ env: {{ ENABLE_PREFIX_DELEGATION: \"true\" }} }} }}\n  \
                 access_entries:\n    - {{ principal_arn: \"{ADMIN}\", policies: [ {{ policy_arn: \"{ADMIN_POLICY}\" }} ] }}\n  nodegroups:\n"
            ),
        )
    };
    stage.upload(&with("v1.18.3-eksbuild.1")).await;
    let run = stage.provision().await;
    assert_succeeded(&run);
    let eks = opsplane_shared::aws::eks::Eks::new(stage.world.clients.eks.clone());
    let addons = eks.addons(&stage.env).await.unwrap();
    let cni = &addons["vpc-cni"];
    assert_eq!(
        (cni.status.as_str(), cni.version.as_deref()),
        ("ACTIVE", Some("v1.18.3-eksbuild.1"))
    );
    assert_eq!(
        cni.configuration.as_ref().unwrap()["env"]["ENABLE_PREFIX_DELEGATION"],
        "true"
    );
    let access = eks.access_entries(&stage.env).await.unwrap();
    assert_eq!(access[ADMIN].policies[0].policy_arn, ADMIN_POLICY);

    // A newer add-on cannot be taken back: even dev waits for a person.
    stage.upload(&with("v1.19.0-eksbuild.1")).await;
    let approved = stage.provision_approved().await;
    assert_eq!(approved["changes"][0]["field"], "version");
    assert_eq!(approved["changes"][0]["reversible"], false);
    let addons = eks.addons(&stage.env).await.unwrap();
    assert_eq!(
        addons["vpc-cni"].version.as_deref(),
        Some("v1.19.0-eksbuild.1")
    );

    // An older one is refused before anything changes.
    stage.upload(&with("v1.18.3-eksbuild.1")).await;
    let run = stage.provision().await;
    assert_eq!(
        run.error.as_deref(),
        Some("PolicyViolation"),
        "{:?}",
        run.cause
    );
    assert!(
        run.cause
            .as_deref()
            .unwrap_or_default()
            .contains("cannot be downgraded")
    );
    assert!(stage.lock_is_free().await);
}
