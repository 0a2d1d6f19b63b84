//! The store contract's guarantees as tests any backend can run: each check takes a fresh, empty
//! store as `&dyn Store`. A backend's test module runs them all with
//! `crate::store::contract::tests!(<expression opening an empty store>);`.

use crate::domain::{
    Capped, Deletion, Dependents, DeviceKind, Group, ManagedPolicy, MfaDevice, MfaTx, Missing,
    OwnerRef, PrincipalKind, Quota, Role, Store, StoreError, StoreRules, Taken, User,
};
use crate::ids::{AccessKeyId, GroupName, IamPath, KeyStatus, PolicyName, RoleName, UserName};
use time::OffsetDateTime;

/// One `#[test]` per check below, each on a store opened by `$open`.
macro_rules! tests {
    ($open:expr) => {
        $crate::store::contract::tests!(@each $open;
            names_are_unique_case_insensitively_and_keep_their_case,
            a_capped_insert_stops_at_the_limit_it_is_given,
            keys_are_scoped_to_their_owner,
            a_user_deletion_counts_every_dependent_and_changes_nothing,
            groups_roles_and_policies_count_their_dependents,
            listing_pages_in_name_order,
            a_step_is_consumed_only_if_newer,
            a_failed_unit_is_undone_alone,
            devices_are_assigned_counted_released_and_deleted,
            the_rules_answer_in_aws_words_on_this_backend,
        );
    };
    (@each $open:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let store = $open;
                $crate::store::contract::$check(&store);
            }
        )*
    };
}
pub(crate) use tests;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_000_000 + secs).unwrap()
}

fn new_user(name: &str) -> User {
    User {
        id: crate::ids::generate_unique_id("AIDA"),
        name: UserName::parse(name).unwrap(),
        path: IamPath::root(),
        created: at(0),
    }
}

fn user(s: &dyn Store, name: &str) -> User {
    let u = new_user(name);
    s.create_user(&u).unwrap();
    u
}

fn owner(u: &User) -> OwnerRef {
    OwnerRef::User(u.id.clone())
}

fn key(s: &dyn Store, owner: &OwnerRef, limit: u32) -> Result<Capped, StoreError> {
    s.insert_access_key(
        owner,
        &AccessKeyId::generate_long_term(),
        b"sealed",
        at(0),
        limit,
    )
}

/// An unassigned virtual device.
fn device(s: &dyn Store, serial: &str) -> MfaDevice {
    let d = MfaDevice {
        id: crate::ids::generate_unique_id("MFAD"),
        serial: serial.to_owned(),
        kind: DeviceKind::Virtual,
        seed_blob: vec![1, 2, 3],
        params: crate::mfa::TotpParams::AWS,
        owner: None,
        enabled_at: None,
        last_step: None,
        drift: 0,
        created: at(0),
    };
    s.insert_mfa_devices(std::slice::from_ref(&d)).unwrap();
    d
}

/// Runs `work` as one unit of an MFA transaction and returns its result.
fn unit<T>(s: &dyn Store, mut work: impl FnMut(&mut dyn MfaTx) -> Result<T, StoreError>) -> T {
    let mut out = None;
    let answers = s
        .mfa_transaction(1, &mut |_, tx| {
            out = Some(work(tx)?);
            Ok(())
        })
        .unwrap();
    assert_eq!(answers.len(), 1);
    answers.into_iter().for_each(|a| a.unwrap());
    out.unwrap()
}

fn role(name: &str) -> Role {
    Role {
        id: crate::ids::generate_unique_id("AROA"),
        name: RoleName::parse(name).unwrap(),
        path: IamPath::root(),
        trust_policy: "{}".into(),
        max_session_duration: 3600,
        description: String::new(),
        created: at(0),
    }
}

fn group(s: &dyn Store, name: &str) -> Group {
    let g = Group {
        id: crate::ids::generate_unique_id("AGPA"),
        name: GroupName::parse(name).unwrap(),
        path: IamPath::root(),
        created: at(0),
    };
    s.create_group(&g).unwrap();
    g
}

fn managed_policy(s: &dyn Store, name: &str) -> ManagedPolicy {
    let p = ManagedPolicy {
        id: crate::ids::generate_unique_id("ANPA"),
        arn: format!("arn:aws:iam::123456789012:policy/{name}"),
        name: PolicyName::parse(name).unwrap(),
        path: IamPath::root(),
        document: r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
        description: String::new(),
        created: at(0),
        updated: at(0),
        attachment_count: 0,
    };
    s.create_managed_policy(&p).unwrap();
    p
}

pub fn names_are_unique_case_insensitively_and_keep_their_case(s: &dyn Store) {
    user(s, "Alice");
    let again = new_user("alice");
    assert_eq!(
        s.create_user(&again),
        Err(StoreError::AlreadyExists(Taken::User(again.name.clone())))
    );
    let found = s.get_user(&UserName::parse("ALICE").unwrap()).unwrap();
    assert_eq!(found.map(|u| u.name.to_string()).as_deref(), Some("Alice"));
    s.create_role(&role("Deploy")).unwrap();
    assert!(matches!(
        s.create_role(&role("DEPLOY")),
        Err(StoreError::AlreadyExists(Taken::Role(_)))
    ));
    let d = device(s, "arn:aws:iam::123456789012:mfa/Phone");
    let mut twin = d.clone();
    twin.id = crate::ids::generate_unique_id("MFAD");
    twin.serial = d.serial.to_uppercase();
    assert!(matches!(
        s.insert_mfa_devices(&[twin]),
        Err(StoreError::AlreadyExists(Taken::MfaDevice { .. }))
    ));
    let found = s.get_mfa_device(&d.serial.to_lowercase()).unwrap();
    assert_eq!(found.map(|f| f.serial), Some(d.serial));
}

pub fn a_capped_insert_stops_at_the_limit_it_is_given(s: &dyn Store) {
    let bob = owner(&user(s, "bob"));
    assert_eq!(key(s, &bob, 2), Ok(Capped::Inserted));
    assert_eq!(key(s, &bob, 2), Ok(Capped::Inserted));
    assert_eq!(key(s, &bob, 2), Ok(Capped::AtLimit));
    assert_eq!(s.list_access_keys(&bob).unwrap().len(), 2, "nothing stored");
    assert_eq!(
        key(s, &bob, 3),
        Ok(Capped::Inserted),
        "the limit is a parameter"
    );
    assert_eq!(
        key(s, &OwnerRef::Root, 1),
        Ok(Capped::Inserted),
        "root counts alone"
    );
    assert_eq!(key(s, &OwnerRef::Root, 1), Ok(Capped::AtLimit));
}

pub fn keys_are_scoped_to_their_owner(s: &dyn Store) {
    let a = user(s, "a1");
    let b = owner(&user(s, "b1"));
    let k = AccessKeyId::generate_long_term();
    s.insert_access_key(&owner(&a), &k, b"x", at(0), 2).unwrap();
    let missing = Err(StoreError::NotFound(Missing::AccessKey(k.clone())));
    assert_eq!(s.update_access_key(&b, &k, KeyStatus::Inactive), missing);
    assert_eq!(s.delete_access_key(&b, &k), missing);
    let rec = s.get_access_key(&k).unwrap().unwrap();
    assert_eq!(rec.status, KeyStatus::Active);
    assert!(rec.owner.is(&owner(&a)));
    s.update_access_key(&owner(&a), &k, KeyStatus::Inactive)
        .unwrap();
    assert_eq!(
        s.get_access_key(&k).unwrap().map(|r| r.status),
        Some(KeyStatus::Inactive)
    );
}

pub fn a_user_deletion_counts_every_dependent_and_changes_nothing(s: &dyn Store) {
    let carol = user(s, "carol");
    let me = owner(&carol);
    let k = AccessKeyId::generate_long_term();
    s.insert_access_key(&me, &k, b"x", at(0), 2).unwrap();
    let d = device(s, "carol-phone");
    unit(s, |tx| tx.assign_device(&d.id, &me, at(1)));
    unit(s, |tx| tx.record_failure(&me, 5));
    let p = managed_policy(s, "ReadOnly");
    s.attach_policy(&p.arn, PrincipalKind::User, &carol.id)
        .unwrap();
    s.put_inline_policy(PrincipalKind::User, &carol.id, "own", "{}")
        .unwrap();
    let g = group(s, "devs");
    s.add_user_to_group(&g.id, &carol.id).unwrap();

    assert_eq!(
        s.delete_user_if_unused(&carol.name),
        Ok(Deletion::Refused(Dependents {
            access_keys: 1,
            mfa_devices: 1,
            policies: 2,
            groups: 1,
            ..Dependents::default()
        }))
    );
    assert!(
        s.get_user(&carol.name).unwrap().is_some(),
        "nothing changed"
    );
    assert_eq!(s.mfa_lockout(&me).unwrap().failures, 1);

    s.delete_access_key(&me, &k).unwrap();
    unit(s, |tx| tx.release_device(&d.id));
    s.detach_policy(&p.arn, PrincipalKind::User, &carol.id)
        .unwrap();
    s.delete_inline_policy(PrincipalKind::User, &carol.id, "own")
        .unwrap();
    s.remove_user_from_group(&g.id, &carol.id).unwrap();
    assert_eq!(s.delete_user_if_unused(&carol.name), Ok(Deletion::Deleted));
    assert_eq!(s.get_user(&carol.name).unwrap(), None);
    assert_eq!(
        s.mfa_lockout(&me).unwrap().failures,
        0,
        "its counter went too"
    );
    assert_eq!(
        s.delete_user_if_unused(&carol.name),
        Err(StoreError::NotFound(Missing::User(carol.name.clone())))
    );
}

pub fn groups_roles_and_policies_count_their_dependents(s: &dyn Store) {
    let dave = user(s, "dave");
    let g = group(s, "ops");
    s.add_user_to_group(&g.id, &dave.id).unwrap();
    s.add_user_to_group(&g.id, &dave.id).unwrap();
    s.put_inline_policy(PrincipalKind::Group, &g.id, "p", "{}")
        .unwrap();
    assert_eq!(
        s.delete_group_if_unused(&g.id),
        Ok(Deletion::Refused(Dependents {
            members: 1,
            policies: 1,
            ..Dependents::default()
        }))
    );

    let role = role("deployer");
    s.create_role(&role).unwrap();
    let p = managed_policy(s, "Deploy");
    s.attach_policy(&p.arn, PrincipalKind::Role, &role.id)
        .unwrap();
    s.attach_policy(&p.arn, PrincipalKind::Group, &g.id)
        .unwrap();
    assert_eq!(
        s.delete_role_if_unused(&role.name),
        Ok(Deletion::Refused(Dependents {
            policies: 1,
            ..Dependents::default()
        }))
    );
    assert_eq!(
        s.delete_managed_policy_if_unused(&p.arn),
        Ok(Deletion::Refused(Dependents {
            attachments: 2,
            ..Dependents::default()
        }))
    );
    assert!(s.get_managed_policy(&p.arn).unwrap().is_some());
    s.detach_policy(&p.arn, PrincipalKind::Role, &role.id)
        .unwrap();
    assert_eq!(s.delete_role_if_unused(&role.name), Ok(Deletion::Deleted));
    assert_eq!(s.get_role(&role.name).unwrap(), None);
    assert_eq!(
        s.detach_policy(&p.arn, PrincipalKind::Role, &role.id),
        Err(StoreError::NotFound(Missing::Attachment(p.arn.clone())))
    );
}

pub fn listing_pages_in_name_order(s: &dyn Store) {
    for n in ["c", "a", "b"] {
        user(s, n);
    }
    let p1 = s.list_users("/", None, 2).unwrap();
    let names: Vec<_> = p1.items.iter().map(|u| u.name.to_string()).collect();
    assert_eq!(names, ["a", "b"]);
    let p2 = s.list_users("/", p1.next_marker.as_deref(), 2).unwrap();
    assert_eq!(p2.items.len(), 1);
    assert_eq!(p2.items[0].name.as_str(), "c");
    assert!(p2.next_marker.is_none());
}

pub fn a_step_is_consumed_only_if_newer(s: &dyn Store) {
    let d = device(s, "erin-phone");
    let consumed: Vec<bool> = [5, 5, 4, 6]
        .into_iter()
        .map(|step| unit(s, |tx| tx.consume_step(&d.id, step, -1)))
        .collect();
    assert_eq!(consumed, [true, false, false, true]);
    let stored = s.get_mfa_device(&d.serial).unwrap().unwrap();
    assert_eq!((stored.last_step, stored.drift), (Some(6), -1));
}

pub fn a_failed_unit_is_undone_alone(s: &dyn Store) {
    let frank = owner(&user(s, "frank"));
    let d = device(s, "frank-phone");
    let mut seen = Vec::new();
    let answers = s
        .mfa_transaction(3, &mut |i, tx| match i {
            0 => tx.record_failure(&frank, 10),
            1 => {
                tx.consume_step(&d.id, 7, 0)?;
                tx.record_failure(&frank, 11)?;
                Err(StoreError::Internal("this unit fails".into()))
            }
            _ => {
                let state = tx.lockout(&frank)?;
                let last = tx.device(&d.serial)?.and_then(|d| d.last_step);
                seen.push((state.failures, state.last_failure_at, last));
                tx.consume_step(&d.id, 7, 0).map(|_| ())
            }
        })
        .unwrap();
    assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
    assert!(answers[1].is_err());
    assert_eq!(seen, [(1, Some(10), None)], "unit 1's writes were undone");
    assert_eq!(s.mfa_lockout(&frank).unwrap().failures, 1);
    assert_eq!(
        s.get_mfa_device(&d.serial).unwrap().unwrap().last_step,
        Some(7)
    );

    // A transaction of one failing unit changes nothing either.
    let alone = s
        .mfa_transaction(1, &mut |_, tx| {
            tx.record_failure(&frank, 12)?;
            tx.consume_step(&d.id, 8, 0)?;
            Err(StoreError::Internal("this unit fails".into()))
        })
        .unwrap();
    assert!(matches!(alone.as_slice(), [Err(StoreError::Internal(_))]));
    let state = s.mfa_lockout(&frank).unwrap();
    assert_eq!((state.failures, state.last_failure_at), (1, Some(10)));
    assert_eq!(
        s.get_mfa_device(&d.serial).unwrap().unwrap().last_step,
        Some(7)
    );
}

pub fn devices_are_assigned_counted_released_and_deleted(s: &dyn Store) {
    let gina = owner(&user(s, "gina"));
    let d1 = device(s, "gina-phone-1");
    let d2 = device(s, "gina-phone-2");
    assert_eq!(unit(s, |tx| tx.devices_enabled_for(&gina)), 0);
    unit(s, |tx| tx.assign_device(&d1.id, &gina, at(1)));
    unit(s, |tx| tx.assign_device(&d2.id, &gina, at(2)));
    unit(s, |tx| tx.consume_step(&d1.id, 30, 2).map(|_| ()));
    assert_eq!(unit(s, |tx| tx.devices_enabled_for(&gina)), 2);
    assert_eq!(unit(s, |tx| tx.devices_enabled_for(&OwnerRef::Root)), 0);
    let listed: Vec<_> = s
        .list_mfa_devices(&gina)
        .unwrap()
        .into_iter()
        .map(|d| d.serial)
        .collect();
    assert_eq!(listed, [d1.serial.clone(), d2.serial.clone()]);
    unit(s, |tx| tx.release_device(&d1.id));
    let released = s.get_mfa_device(&d1.serial).unwrap().unwrap();
    assert!(released.owner.is_none() && released.enabled_at.is_none());
    assert_eq!(
        (released.last_step, released.drift),
        (Some(30), 0),
        "a spent step stays spent"
    );
    unit(s, |tx| tx.delete_device(&d1.id));
    assert!(s.get_mfa_device(&d1.serial).unwrap().is_none());
    unit(s, |tx| tx.clear_failures(&gina));
}

pub fn the_rules_answer_in_aws_words_on_this_backend(s: &dyn Store) {
    let hal = user(s, "hal");
    let me = owner(&hal);
    for _ in 0..Quota::AccessKeysPerUser.limit() {
        s.create_access_key(&me, &AccessKeyId::generate_long_term(), b"x", at(0))
            .unwrap();
    }
    let third = s.create_access_key(&me, &AccessKeyId::generate_long_term(), b"x", at(0));
    assert_eq!(
        third.map_err(|e| e.to_string()),
        Err("Cannot exceed quota for AccessKeysPerUser: 2".to_owned())
    );
    assert_eq!(
        s.delete_user(&hal.name).map_err(|e| e.to_string()),
        Err("Cannot delete entity, must delete access keys first.".to_owned())
    );
    let d = device(s, "arn:aws:iam::123456789012:mfa/hal");
    let enable = s.bind_mfa_device(&d.serial, &me, false, at(3), &mut |_| {
        crate::domain::CodeVerdict::Accepted {
            step: 9,
            drift: Some(0),
        }
    });
    assert_eq!(enable, Ok(crate::domain::BindOutcome::Done));
    assert_eq!(
        s.delete_virtual_mfa_device(&d.serial)
            .map_err(|e| e.to_string()),
        Err("MFA Device is in use: deactivate it before deleting it.".to_owned())
    );
    assert!(s.get_user(&hal.name).unwrap().is_some());
}
