//! Nobody grants what they do not hold, whatever the credential: every path that mints
//! permissions (subuser grants, roles, role assignment, API keys, tasks) is walked with a
//! credential that holds less than it asks for.

use std::sync::Arc;

use catalyst_core::ErrorKind;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{CatchUp, TaskAction};
use catalyst_core::permission::{Permission, Principal};
use catalyst_runtime::control::{GrantAccess, NewApiKey, NewRole, NewTask, UserPatch};

use crate::control::world;
use crate::support;

/// Refused: `permission_denied`, or `not_found` where the credential cannot even see the server.
fn denied<T: std::fmt::Debug>(what: &str, r: catalyst_core::Result<T>) {
    match r {
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::NotFound) => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

async fn key(w: &crate::control::World, who: &Principal, scopes: &[Permission]) -> Principal {
    let input = NewApiKey {
        name: "k".into(),
        scopes: scopes.to_vec(),
        rate_limit: None,
        rate_window_secs: 60,
        expires_at: None,
    };
    let created = w.catalyst.create_api_key(who, input).await.expect("key");
    w.catalyst.authenticate(&created.key, None).await.expect("key auth")
}

#[tokio::test]
async fn no_credential_grants_beyond_what_it_holds() {
    let (store, _dir) = support::sqlite().await;
    let w = world(Arc::new(store)).await;
    let c = &w.catalyst;
    let (alice, alice_p) = w.user("alice").await;
    let (bob, bob_p) = w.user("bob").await;
    let (mallory, _) = w.user("mallory").await;
    let s = c.create_server(&w.admin, w.new_server(alice.id, 31001)).await.expect("server");
    w.until_state(s.id, ServerState::Stopped).await;
    let grant = |perms: &[Permission]| GrantAccess { user_id: mallory.id, permissions: perms.to_vec() };
    let files = [Permission::FileRead, Permission::FileWrite, Permission::ConsoleWrite];

    // An administrator's key scoped to server.update may manage subusers, not hand out files.
    let admin_key = key(&w, &w.admin, &[Permission::ServerUpdate]).await;
    denied("admin key grants file.*", c.grant_access(&admin_key, s.id, grant(&files)).await);
    c.grant_access(&admin_key, s.id, grant(&[Permission::ServerUpdate])).await.expect("within the ceiling");

    c.grant_access(&alice_p, s.id, grant(&files)).await.expect("the owner holds these");

    // A subuser grants only within their own grant.
    let sub = GrantAccess { user_id: bob.id, permissions: vec![Permission::ServerUpdate, Permission::FileRead] };
    c.grant_access(&alice_p, s.id, sub).await.expect("bob");
    denied("subuser grants file.write", c.grant_access(&bob_p, s.id, grant(&[Permission::FileWrite])).await);
    // …and cannot cut down or remove the grant of someone who holds more than they do.
    denied("subuser narrows a stronger grant", c.grant_access(&bob_p, s.id, grant(&[Permission::FileRead])).await);
    denied("subuser removes a stronger grant", c.revoke_access(&bob_p, s.id, mallory.id).await);
    let (dave, _) = w.user("dave").await;
    let fresh = GrantAccess { user_id: dave.id, permissions: vec![Permission::FileRead] };
    c.grant_access(&bob_p, s.id, fresh).await.expect("within bob's grant");
    c.revoke_access(&bob_p, s.id, dave.id).await.expect("what bob could grant he may take back");

    // Someone holding admin.users alone cannot mint a bigger role or take one.
    let users_admin_role = c
        .create_role(
            &w.admin,
            NewRole { name: "user-admins".into(), description: String::new(), permissions: vec!["admin.users".into()] },
        )
        .await
        .expect("role");
    let (eve, _) = w.user("eve").await;
    c.update_user(&w.admin, eve.id, UserPatch { roles: Some(vec![users_admin_role.id]), ..Default::default() })
        .await
        .expect("eve administers users");
    let eve_p = c.principal_for(eve.id).await.expect("eve");
    denied(
        "role with *",
        c.create_role(
            &eve_p,
            NewRole { name: "all".into(), description: String::new(), permissions: vec!["*".into()] },
        )
        .await,
    );
    let admin_role =
        c.list_roles(&w.admin).await.expect("roles").into_iter().find(|r| r.name == "admin").expect("admin");
    denied(
        "taking the admin role",
        c.update_user(&eve_p, eve.id, UserPatch { roles: Some(vec![admin_role.id]), ..Default::default() }).await,
    );
    let admin_id = w.admin.user_id().expect("admin id");
    denied(
        "editing a bigger user",
        c.update_user(&eve_p, admin_id, UserPatch { username: Some("pwned".into()), ..Default::default() }).await,
    );
    denied("deleting a bigger user", c.delete_user(&eve_p, admin_id).await);
    c.create_role(
        &eve_p,
        NewRole { name: "helpers".into(), description: String::new(), permissions: vec!["admin.users".into()] },
    )
    .await
    .expect("a role within eve's permissions");

    // A key may mint keys and tasks only within its own scopes.
    let key_maker = key(&w, &w.admin, &[Permission::ApikeyCreate]).await;
    let wider = NewApiKey {
        name: "wider".into(),
        scopes: vec![Permission::ServerRead],
        rate_limit: None,
        rate_window_secs: 60,
        expires_at: None,
    };
    denied("key minting a wider key", c.create_api_key(&key_maker, wider).await);
    // Keys never mint keys at all: a child would outlive its parent's expiry, limit and revocation.
    let narrower = NewApiKey {
        name: "child".into(),
        scopes: vec![Permission::ApikeyCreate],
        rate_limit: None,
        rate_window_secs: 60,
        expires_at: None,
    };
    denied("key minting a key", c.create_api_key(&key_maker, narrower).await);
    let task_key = key(&w, &w.admin, &[Permission::TaskCreate]).await;
    let task = NewTask {
        server_id: s.id,
        name: "t".into(),
        cron: "0 0 * * * *".into(),
        timezone: "UTC".into(),
        action: TaskAction::Start,
        enabled: true,
        catch_up: CatchUp::default(),
    };
    denied("task acting beyond the key", c.create_task(&task_key, task).await);
}
